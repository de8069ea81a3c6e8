"""The Celery edge's settings that decide what a broker outage does to a running batch."""

from __future__ import annotations

import subprocess
import sys

from dripcare.celery_app import create_app


def test_a_running_batch_finishes_after_a_broker_connection_loss() -> None:
    """Cancelling it would leave its rows `sending` until lease recovery resends them."""
    app = create_app()
    assert app.conf.worker_cancel_long_running_tasks_on_connection_loss is False
    assert app.conf.task_acks_late is True


def test_the_connection_loss_warning_about_celery_6_is_not_logged() -> None:
    """In a process of its own: pytest shows every pending deprecation whatever the filters."""
    script = """if True:
        import warnings
        from celery.exceptions import CPendingDeprecationWarning
        from celery.worker.consumer.consumer import CANCEL_TASKS_BY_DEFAULT
        import dripcare.celery_app
        dripcare.celery_app.create_app().log.setup()  # as the worker does: Celery's own filters
        warnings.warn(CANCEL_TASKS_BY_DEFAULT, CPendingDeprecationWarning)
        warnings.warn("another pending deprecation", CPendingDeprecationWarning)
    """
    done = subprocess.run(
        [sys.executable, "-W", "default", "-c", script], capture_output=True, text=True, check=True
    )
    assert "another pending deprecation" in done.stderr
    assert "Celery 6" not in done.stderr
