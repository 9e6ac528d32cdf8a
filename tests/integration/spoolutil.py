"""
Reading mtad's spool from the tests: slot files (slots/NUM), in the format
of common/spool_slot.h, read the way qmgr's recovery reads them.

- slots(spool): {num: Slot} for every slot file.
- messages(spool): {queue id: envelope dict} of the messages in slots.
- envelope(spool, msgid): one message's envelope dict, or None.
"""
import json
import os
import struct
from pathlib import Path

HDR_SIZE = 512
DATA_OFF = 4096
MAGIC = b"MTADSLT1"
STATE_FREE, STATE_MSG = 0, 1


def crc32c(data, crc=0):
    """CRC-32C (Castagnoli), bit by bit: slow and obviously right."""
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


class Slot:
    """What one slot file holds: state "free", "msg" or "corrupt"
    (env None when the envelope is whole but not JSON)."""

    def __init__(self, path):
        self.path = Path(path)
        self.state, self.id, self.env, self.data = "corrupt", None, None, b""
        raw = self.path.read_bytes()
        page = raw[:2 * HDR_SIZE].ljust(2 * HDR_SIZE, b"\0")
        heads = [h for h in (self._decode(page[i * HDR_SIZE:(i + 1) *
                                               HDR_SIZE]) for i in (0, 1))
                 if h is not None]
        for h in sorted(heads, key=lambda h: -h["seq"]):
            if h["state"] == STATE_FREE:
                self.state = "free"
                return
            env = raw[h["env_off"]:h["env_off"] + h["env_len"]]
            if len(env) == h["env_len"] and crc32c(env) == h["env_crc"]:
                self.state, self.id = "msg", h["id"]
                try:
                    self.env = json.loads(env)
                except ValueError:
                    self.env = None     # whole, but not JSON: qmgr's call
                self.data = raw[DATA_OFF:DATA_OFF + h["data_len"]]
                return
        if not heads and not any(page):
            self.state = "free"         # never committed

    @staticmethod
    def _decode(b):
        if b[:8] != MAGIC or struct.unpack_from("<I", b, 508)[0] != \
                crc32c(b[:508]):
            return None
        seq, state, env_len, data_len, env_off, env_crc = \
            struct.unpack_from("<QIIQQI", b, 8)
        return {"seq": seq, "state": state, "env_len": env_len,
                "data_len": data_len, "env_off": env_off,
                "env_crc": env_crc, "id": b[44:56].decode("ascii")}


def slots(spool):
    d = Path(spool) / "slots"
    if not d.is_dir():
        return {}
    return {int(p.name): Slot(p) for p in d.iterdir() if p.name.isdigit()}


def messages(spool):
    return {s.id: s.env for s in slots(spool).values() if s.state == "msg"}


def envelope(spool, msgid):
    return messages(spool).get(msgid)


def data(spool, msgid):
    """The message bytes as queued, or None."""
    for s in slots(spool).values():
        if s.state == "msg" and s.id == msgid:
            return s.data
    return None


def corrupt_slot_header(path):
    """Damage both header copies of a slot file (a disk error)."""
    with open(path, "r+b") as f:
        for off in (100, HDR_SIZE + 100):
            f.seek(off)
            f.write(b"\xff\xff")
        f.flush()
        os.fsync(f.fileno())


def rewrite_envelope(path, env):
    """
    Give the message in slot file path the envelope bytes env, written
    as qmgr writes an update (a new header with the next seq), so that
    only the envelope's content is wrong, not its checksum.
    """
    raw = Path(path).read_bytes()
    heads = [(i, Slot._decode(raw[i * HDR_SIZE:(i + 1) * HDR_SIZE]))
             for i in (0, 1)]
    half, cur = max(((i, h) for i, h in heads if h is not None),
                    key=lambda ih: ih[1]["seq"])
    off = len(raw)
    b = bytearray(HDR_SIZE)
    b[:8] = MAGIC
    struct.pack_into("<QIIQQI", b, 8, cur["seq"] + 1, STATE_MSG, len(env),
                     cur["data_len"], off, crc32c(env))
    b[44:56] = cur["id"].encode("ascii")
    struct.pack_into("<I", b, 508, crc32c(bytes(b[:508])))
    with open(path, "r+b") as f:
        f.seek(off)
        f.write(env)
        f.seek((1 - half) * HDR_SIZE)
        f.write(bytes(b))
