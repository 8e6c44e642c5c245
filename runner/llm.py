"""LLM detectors: ask the Anthropic Messages API to turn a command's output into a finding.

The SDK is imported inside `ask_model`, so only runs that call the model pay for it. The API key
comes only from the credential file `$CREDENTIALS_DIRECTORY/<api_key_credential>` (systemd's
LoadCredential=), never from the environment, and never reaches stdout, stderr or runs.jsonl.
The SDK retries 429/5xx/connection errors `llm.max_retries` times (spec, default 2); what is
still failing after that is an api-error, as are refusals and a second malformed reply.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from runner.history import RunRecord
from runner.llm_reply import (
    SYSTEM,
    TOOL_DESCRIPTION,
    TOOL_NAME,
    TOOL_SCHEMA,
    ReplyVerdict,
    judge,
    usage_of,
    user_message,
)
from runner.spec import Llm

if TYPE_CHECKING:
    from collections.abc import Callable

    from anthropic.types import MessageParam


class LlmError(Exception):
    """The model gave no usable answer: API error, refusal, malformed twice, no key."""


def read_api_key(credential: str | None) -> str:
    if not credential:
        raise LlmError("no API key configured: set llm.api_key to the name of a secret")
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        raise LlmError(
            f"$CREDENTIALS_DIRECTORY is not set: the unit must pass the API key with "
            f"LoadCredential={credential}:FILE"
        )
    try:
        with open(os.path.join(directory, credential), encoding="utf-8") as handle:
            key = handle.read().strip()
    except OSError as error:
        raise LlmError(
            f"cannot read the API key credential {credential!r} from $CREDENTIALS_DIRECTORY: "
            f"{error.strerror}"
        ) from None
    if not key:
        raise LlmError(f"the API key credential {credential!r} is empty")
    return key


def ask_model(
    llm: Llm,
    command_output: str | None,
    record: RunRecord,
    before_retry: Callable[[], None] | None = None,
) -> dict[str, object] | None:
    """The finding the model reports, or None for "nothing to report". Tokens and cost of
    every call (a retry included) are added to `record`, also when the run then fails.
    `before_retry` runs before the second attempt (it may raise to stop: a budget)."""
    key = read_api_key(llm.api_key_credential)
    try:
        return _converse(llm, key, command_output, record, before_retry)
    except LlmError as error:
        raise LlmError(str(error).replace(key, "[api key]")) from None


def _converse(
    llm: Llm,
    key: str,
    command_output: str | None,
    record: RunRecord,
    before_retry: Callable[[], None] | None,
) -> dict[str, object] | None:
    from runner.packages import load

    anthropic = load("anthropic", "a prompt job's model call")
    client = anthropic.Anthropic(
        api_key=key,
        base_url=llm.base_url or os.environ.get("ANTHROPIC_BASE_URL") or None,
        timeout=llm.timeout,
        max_retries=llm.max_retries,
    )
    messages: list[MessageParam] = [
        {"role": "user", "content": user_message(llm.prompt, command_output)}
    ]
    record.model = llm.model
    verdict = ReplyVerdict("malformed")
    for attempt in (1, 2):
        if attempt > 1 and before_retry is not None:
            before_retry()
        try:
            response = client.messages.create(
                model=llm.model,
                max_tokens=llm.max_tokens,
                system=SYSTEM,
                messages=messages,
                tools=[
                    {
                        "name": TOOL_NAME,
                        "description": TOOL_DESCRIPTION,
                        "input_schema": TOOL_SCHEMA,
                    }
                ],
                tool_choice={
                    "type": "tool",
                    "name": TOOL_NAME,
                    "disable_parallel_tool_use": True,
                },
            )
        except anthropic.APIStatusError as error:
            raise LlmError(f"API error {error.status_code}: {_short(error.message)}") from None
        except anthropic.APITimeoutError:
            raise LlmError(f"API request timed out after {llm.timeout:g}s") from None
        except anthropic.APIConnectionError as error:
            raise LlmError(f"cannot reach the API: {_short(str(error))}") from None
        except anthropic.AnthropicError as error:
            raise LlmError(f"API client error: {_short(str(error))}") from None
        reply: dict[str, object] = response.to_dict()
        _count(llm, reply, record)
        verdict = judge(reply)
        if verdict.kind == "finding":
            return verdict.finding
        if verdict.kind == "nothing":
            return None
        if verdict.kind == "refusal":
            raise LlmError(verdict.reason)
        print(f"vigil: malformed reply (attempt {attempt} of 2): {verdict.reason}", file=sys.stderr)
        messages = _retry_messages(messages[0], reply, verdict)
    raise LlmError(f"malformed reply twice: {verdict.reason}")


def _retry_messages(
    first: MessageParam, reply: dict[str, object], verdict: ReplyVerdict
) -> list[MessageParam]:
    """Tell the model what was wrong with its tool call, so the retry can fix it."""
    if not verdict.tool_use_id:
        return [first]
    calls = [b for b in _blocks(reply) if b.get("id") == verdict.tool_use_id]
    data = calls[0].get("input") if calls else None
    return [
        first,
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": verdict.tool_use_id,
                    "name": TOOL_NAME,
                    "input": data if isinstance(data, dict) else {},
                }
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": verdict.tool_use_id,
                    "is_error": True,
                    "content": f"Invalid: {verdict.reason}. Call {TOOL_NAME} again, correctly.",
                }
            ],
        },
    ]


def _blocks(reply: dict[str, object]) -> list[dict[str, object]]:
    content = reply.get("content")
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def _count(llm: Llm, reply: dict[str, object], record: RunRecord) -> None:
    tokens_in, tokens_out = usage_of(reply)
    record.tokens_in += tokens_in
    record.tokens_out += tokens_out
    if llm.price_per_mtok is None:
        note = f"no price known for {llm.model}: cost counted as 0"
        if note not in record.notes:
            record.notes.append(note)
            print(f"vigil: {note}", file=sys.stderr)
        cost = 0.0
    else:
        cost = (tokens_in * llm.price_per_mtok[0] + tokens_out * llm.price_per_mtok[1]) / 1e6
    record.cost_usd += cost
    print(
        f"vigil: {llm.model}: {tokens_in} input + {tokens_out} output tokens, {cost:.4f} USD",
        file=sys.stderr,
    )


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
