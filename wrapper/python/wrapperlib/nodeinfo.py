"""Node profile logged at start: CPU, memory, disk, OS, load."""
import os
import sys


def meminfo():
    """MemTotal and MemAvailable in MiB (None where /proc/meminfo lacks them)."""
    found = {}
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                key, _, value = line.partition(":")
                if key in ("MemTotal", "MemAvailable"):
                    found[key] = int(value.split()[0]) // 1024
    except OSError:
        pass
    return found.get("MemTotal"), found.get("MemAvailable")


def os_name():
    try:
        with open("/etc/os-release") as release:
            for line in release:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    uname = os.uname()
    return "%s %s" % (uname.sysname, uname.release)


def profile(workdir):
    mem_total, mem_available = meminfo()
    disk = os.statvfs(workdir)
    try:
        usable_cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable_cpus = os.cpu_count()
    return {
        "host": os.uname().nodename,
        "os": os_name(),
        "arch": os.uname().machine,
        "python": "%d.%d.%d" % sys.version_info[:3],
        "cpus": os.cpu_count(),
        "usable_cpus": usable_cpus,
        "mem_total_mb": mem_total,
        "mem_available_mb": mem_available,
        "disk_free_mb": disk.f_bavail * disk.f_frsize // (1024 * 1024),
        "load": "%.2f,%.2f,%.2f" % os.getloadavg(),
    }
