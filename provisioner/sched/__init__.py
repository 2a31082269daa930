"""Policy steps (APF "sched" plugins): each turns the previous number into a new one."""
