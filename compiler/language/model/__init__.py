"""The config language as pydantic models. The JSON Schemas in schemas/ are generated from it."""

from compiler.language.model.channels import Channel
from compiler.language.model.config import Config
from compiler.language.model.coordinator import Coordinator
from compiler.language.model.finding import Finding
from compiler.language.model.jobs import Job
from compiler.language.model.nag import NagRule
from compiler.language.model.watches import Watch

__all__ = ["Channel", "Config", "Coordinator", "Finding", "Job", "NagRule", "Watch"]
