"""The embedded mode's file-system broker, safe against a sender that dies mid-write.

kombu's filesystem transport creates a message file and then writes it; a consumer polling in between reads
an empty file, fails to decode it and stops consuming, and a sender killed between the two (SIGKILL, the
OOM killer) leaves that empty file behind for every later consumer. Here a message is written under a name
no consumer picks up and renamed into the queue folder once complete (a rename is atomic within a folder),
and a file that still cannot be decoded (left by an older version) is logged and dropped instead of stopping
the worker. Registered as the `retortfs` transport (settings: CELERY_BROKER_URL = "retortfs://").
"""

import logging
import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

logger = logging.getLogger(__name__)


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = f"{final}.part"  # consumers take only names ending in ".<queue>.msg"
        try:
            with open(partial, "wb", buffering=0) as handle:
                handle.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc

    def _get(self, queue):
        while True:
            try:
                return super()._get(queue)
            except ValueError:  # an undecodable message file: already taken out of the folder by the read
                logger.error("Dropped an unreadable message file from queue %s", queue)


class Transport(filesystem.Transport):
    Channel = Channel


TRANSPORT_ALIASES.setdefault("retortfs", "config.broker:Transport")
