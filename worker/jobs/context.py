"""What a handler gets besides its payload: the job, the live config and the services."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from loguru import logger as _logger

from worker.queue import Job

if TYPE_CHECKING:
    from loguru import Logger

    from worker.runtime.services import Services


@dataclass
class JobContext:
    job: Job
    services: Services
    log: Logger = _logger

    @property
    def is_last_attempt(self) -> bool:
        return self.job.attempts >= self.job.max_attempts
