"""The config language as pydantic models. The JSON Schemas in schemas/ are generated from it."""

from compiler.model.channels import Channel
from compiler.model.config import Config
from compiler.model.coordinator import Coordinator
from compiler.model.finding import Finding
from compiler.model.jobs import Job
from compiler.model.nag import NagRule
from compiler.model.watches import Watch

__all__ = ["Channel", "Config", "Coordinator", "Finding", "Job", "NagRule", "Watch"]
