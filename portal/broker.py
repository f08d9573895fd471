"""kombu's filesystem transport with atomic writes: the embedded mode's broker.

kombu 5.7 creates a message file, then locks and writes it. A worker listing the folder in between can take the
empty file, fail to decode it, and stop ("Unrecoverable error"), losing the message. Here a message is written
under a name no reader picks up and renamed into place, so a reader sees a whole message or none.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

SCHEME = "lantern-filesystem"


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # Readers take files named "<id>.<queue>.msg"; a leading dot keeps this one out of their match.
        partial = os.path.join(self.data_folder_out, f".{name}.part")
        try:
            write_message(partial, str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


def write_message(path: str, data: bytes) -> None:
    with open(path, "wb") as file:
        file.write(data)


class Transport(filesystem.Transport):
    Channel = Channel


TRANSPORT_ALIASES.setdefault(SCHEME, "portal.broker:Transport")
