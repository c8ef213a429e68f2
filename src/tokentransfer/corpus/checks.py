"""The MIDI check: whether a file's content is a usable MIDI file (:func:`check_midi`)."""

from __future__ import annotations

from .safety import Limits


def check_midi(data: bytes, limits: Limits) -> str | None:
    """Why ``data`` is not a usable MIDI file, or ``None`` when it is.

    Checks the ``MThd`` header, that symusic parses it, the ticks per quarter (between
    ``limits.min_ticks_per_quarter`` and ``limits.max_ticks_per_quarter``; SMPTE timing is not
    ticks per quarter and passes), that it has at least ``limits.min_notes`` notes and lasts
    at most ``limits.max_hours``.
    """
    if len(data) == 0:
        return "empty file"
    if data[:4] != b"MThd":
        return "not a MIDI file (no MThd header)"
    if len(data) >= 14:
        tpq = int.from_bytes(data[12:14], "big")
        low, high = limits.min_ticks_per_quarter, limits.max_ticks_per_quarter
        if tpq & 0x8000 == 0 and not low <= tpq <= high:
            return f"absurd ticks per quarter: {tpq} (allowed: {low} to {high})"
    try:
        import symusic

        score = symusic.Score.from_midi(data, ttype="second")
    except Exception as exc:  # symusic raises plain RuntimeError/ValueError on bad input
        return (
            f"unreadable MIDI: {str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}"
        )
    notes = score.note_num()
    if notes < limits.min_notes:
        return "no notes" if notes == 0 else f"only {notes} notes (minimum {limits.min_notes})"
    hours = score.end() / 3600.0
    if hours > limits.max_hours:
        return f"too long: {hours:.1f} hours (limit {limits.max_hours:g})"
    return None
