"""The embedded file broker survives a sender killed mid-write: kombu's own filesystem transport creates the
message file before writing it, so a consumer could read it empty (and stop consuming), and a dead sender
left it empty for good."""

from kombu import Connection
from kombu.transport import filesystem

import config.broker  # registers retortfs


def _connection(tmp_path, transport="retortfs"):
    folders = {name: tmp_path / name for name in ("queue", "processed", "control")}
    for folder in folders.values():
        folder.mkdir(exist_ok=True)
    options = {
        "data_folder_in": str(folders["queue"]),
        "data_folder_out": str(folders["queue"]),
        "processed_folder": str(folders["processed"]),
        "control_folder": str(folders["control"]),
        "polling_interval": 0.01,
    }
    return Connection(f"{transport}://", transport_options=options), folders["queue"]


def test_an_empty_message_file_left_by_a_dead_sender_is_dropped_and_the_next_one_delivered(tmp_path):
    connection, queue_dir = _connection(tmp_path)
    with connection:
        queue = connection.SimpleQueue("default")
        (queue_dir / "0_dead-sender.default.msg").write_bytes(b"")  # created, never written
        queue.put({"n": 1})
        assert queue.get(timeout=2).payload == {"n": 1}
        assert not list(queue_dir.glob("*.msg"))
        queue.close()


def test_the_stock_transport_stops_on_that_file(tmp_path):
    """Why the transport exists: kombu's filesystem transport cannot read past it."""
    connection, queue_dir = _connection(tmp_path, "filesystem")
    with connection:
        queue = connection.SimpleQueue("default")
        (queue_dir / "0_dead-sender.default.msg").write_bytes(b"")
        queue.put({"n": 1})
        try:
            queue.get(timeout=2)
        except ValueError:
            pass
        else:
            raise AssertionError("kombu's filesystem transport now reads past an empty message file")
        queue.close()


def test_a_message_is_visible_only_once_complete(tmp_path, monkeypatch):
    connection, queue_dir = _connection(tmp_path)
    seen = []
    real_replace = config.broker.os.replace

    def replace(src, dst):  # just before the rename, a consumer looking at the folder finds nothing to take
        seen.append(sorted(p.name.partition(".")[2] for p in queue_dir.iterdir()))
        real_replace(src, dst)

    monkeypatch.setattr(config.broker.os, "replace", replace)
    with connection:
        channel = connection.channel()
        assert isinstance(channel, config.broker.Channel)
        channel._put("default", {"n": 2})
        assert seen == [["default.msg.part"]]
        assert channel._get("default") == {"n": 2}
    assert filesystem.Channel._put is not config.broker.Channel._put
