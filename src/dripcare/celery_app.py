"""The Celery application: Redis in production, an embedded SQLite broker by default.

The broker only ever carries work that is due now (a batch to send, a dispatcher tick);
future emails wait in the database, never as `eta` tasks.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import Any, ParamSpec, Protocol, TypeVar, cast

from celery import Celery, Task, signals
from celery.exceptions import CPendingDeprecationWarning, TaskPredicate
from celery.schedules import crontab

from dripcare.config import get_settings
from dripcare.logs import REQUEST_ID, use_format
from dripcare.redaction import withheld

DISPATCH_QUEUE = "dispatch"
SEND_QUEUE = "send"

# Celery 5 warns on every broker connection loss that a default will change in Celery 6; we set
# that setting explicitly (see create_app), so the warning only hides the real log line. The
# worker's log setup puts an "always" filter for Celery's warnings first and logs them through
# `py.warnings`, hence the logging filter too.
_CELERY_6_NOTICE = "In Celery 5.1 we introduced an optional breaking change"
warnings.filterwarnings("ignore", rf"\s*{_CELERY_6_NOTICE}", CPendingDeprecationWarning)
logging.getLogger("py.warnings").addFilter(
    lambda record: _CELERY_6_NOTICE not in record.getMessage()
)


P = ParamSpec("P")
R = TypeVar("R", covariant=True)
F = TypeVar("F", bound=Callable[..., Any])


class TypedTask(Protocol[P, R]):
    """What dripcare uses of a Celery task, with the signature of the function it runs.

    Celery ships no types: without this, `send_batch.delay(...)` would accept anything."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> Any: ...

    def apply_async(self, *args: Any, **kwargs: Any) -> Any: ...


class TaskFailed(Exception):
    """An unexpected error in a task, told by its frames and types alone."""


class WithheldTask(Task):
    """A task whose unexpected errors reach the worker's log without their messages.

    Celery logs a failed task's exception with its message, and a database error's message
    can name a patient (PostgreSQL's detail on a unique violation shows the row's values).
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except TaskPredicate:  # Retry, Ignore, Reject: Celery's own control flow
            raise
        except Exception as exc:
            raise TaskFailed(withheld(exc)) from None


def create_app() -> Celery:
    settings = get_settings()
    app = Celery("dripcare", include=["dripcare.tasks"], task_cls=WithheldTask)
    app.conf.update(
        broker_url=settings.broker_url,
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        # On a broker connection loss the running batch finishes: its rows are guarded by the
        # claim token, so the redelivered copy finds nothing left to send. Cancelling it would
        # leave rows `sending` until lease recovery (Celery 6 changes this default).
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_prefetch_multiplier=1,
        task_default_queue=SEND_QUEUE,
        task_routes={
            "dripcare.dispatch": {"queue": DISPATCH_QUEUE},
            "dripcare.deliver_alerts": {"queue": DISPATCH_QUEUE},
            "dripcare.purge": {"queue": DISPATCH_QUEUE},
        },
        beat_schedule={
            "dispatch-due-messages": {
                "task": "dripcare.dispatch",
                "schedule": settings.dispatch_interval,
                "options": {"expires": settings.dispatch_interval * 3},
            },
            "deliver-clinic-alerts": {
                "task": "dripcare.deliver_alerts",
                "schedule": settings.dispatch_interval,
                "options": {"expires": settings.dispatch_interval * 3},
            },
        },
        worker_hijack_root_logger=False,
        timezone="UTC",
    )
    if settings.retention_days:
        app.conf.beat_schedule["purge-old-data"] = {
            "task": "dripcare.purge",
            "schedule": crontab(hour=3, minute=17),  # a quiet hour, off the round minute
            "options": {"expires": 3600},
        }
    return app


def task(**options: Any) -> Callable[[Callable[P, R]], TypedTask[P, R]]:
    """`app.task(**options)`, typed: the task keeps its function's signature."""
    return cast(Callable[[Callable[P, R]], TypedTask[P, R]], app.task(**options))


def receiver(*signals: Any, **options: Any) -> Callable[[F], F]:
    """Connect the function to each of these Celery signals, keeping its type (Celery's own
    `signal.connect` decorator is untyped)."""

    def connect(function: F) -> F:
        for signal in signals:
            signal.connect(function, **options)
        return function

    return connect


@receiver(signals.after_setup_logger, signals.after_setup_task_logger)
def _log_format(logger: logging.Logger, **_: Any) -> None:
    """Celery sets up its own handlers: DRIPCARE_LOG_FORMAT applies to them here."""
    use_format(logger, get_settings().log_format)


@receiver(signals.task_prerun)
def _task_id_in_logs(task_id: str, **_: Any) -> None:
    """A task's lines carry its id where an API request's carry the request id."""
    REQUEST_ID.set(task_id)


@receiver(signals.task_postrun)
def _task_done(**_: Any) -> None:
    REQUEST_ID.set("-")


app = create_app()
