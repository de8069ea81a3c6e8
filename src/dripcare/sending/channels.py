"""The channels a message goes out on, each with its own sender (listmonk's messenger map).

`delivery` hands each channel the batch's messages for it, the channel looked up once per
batch: SMS would be a sender here and an entry in `delivery.CHANNELS`, not a branch in the
send loop. Every message is an email today; a message's channel becomes a column with the
second channel.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from dripcare.config import Settings
from dripcare.sending.transports import Transport

if TYPE_CHECKING:  # delivery imports this module: the types only, not a cycle at run time
    from dripcare.sending.delivery import BatchResult, Outcome
    from dripcare.sending.message_view import Job

EMAIL = "email"


class Channel(Protocol):
    """Sends a batch's messages of one channel, yielding each outcome as soon as it is known.

    Failures of the channel itself (its server refusing us) go in `result`, by circuit."""

    def deliver(
        self, jobs: list[Job], now: Callable[[], datetime], result: BatchResult
    ) -> Iterator[Outcome]: ...


ChannelFactory = Callable[[Transport, Settings], Channel]


def channel_of(job: Job) -> str:
    """The channel this message goes out on."""
    return EMAIL
