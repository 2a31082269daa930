"""HTCondor access: a thin adapter over htcondor2 and an in-process pool emulator
that honours the same calls."""
