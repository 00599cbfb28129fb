#!/usr/bin/env python3
"""Ask a running QEMU, through its monitor socket, where every vCPU is: the registers of each
(info registers -a) and its local APIC (info lapic: IRR, ISR, the timer's LVT, count and
deadline; a hang with every vCPU in HLT is often a timer interrupt that never came) go to OUT,
and one line per vCPU (RIP, CR3, and the kernel symbol of RIP from
System.map) to stdout. vm.sh calls it before it stops an emulated host that hangs.

    cpu-dump.py MONITOR_SOCKET SYSTEM_MAP OUT
    cpu-dump.py --jit MONITOR_SOCKET

--jit prints one line of TCG's statistics instead (info jit): how often QEMU has flushed its
translated code, which kicks every vCPU out of the code it runs, and how full the buffer is.
vm.sh samples it while L1 runs (build/l1-jit.log).

    cpu-dump.py --status MONITOR_SOCKET    the run state (info status), e.g. "paused (shutdown)"
    cpu-dump.py --quit MONITOR_SOCKET      end QEMU

vm.sh runs L1 with -action reboot=shutdown,shutdown=pause: a triple fault stops it with its
registers as they were at the fault, for this script to dump, instead of ending QEMU.
"""
import bisect
import re
import socket
import sys
import time


def monitor(path, command, timeout=20.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    out = b""
    deadline = time.time() + timeout

    def read_until_prompt():
        nonlocal out
        while not out.rstrip().endswith(b"(qemu)") and time.time() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk

    read_until_prompt()
    out = b""
    s.sendall(command.encode() + b"\n")
    read_until_prompt()
    s.close()
    return out.decode(errors="replace").replace("\r", "")


def symbols(path):
    addrs, names = [], []
    try:
        with open(path) as f:
            for line in f:
                a, t, n = line.split()[:3]
                if t in "tTwW":
                    addrs.append(int(a, 16))
                    names.append(n)
    except OSError:
        pass
    order = sorted(range(len(addrs)), key=addrs.__getitem__)
    return [addrs[i] for i in order], [names[i] for i in order]


def jit(sock):
    info = monitor(sock, "info jit", timeout=5.0)
    flush = re.search(r"TB flush count\s+(\d+)", info)
    code = re.search(r"gen code size\s+(\d+)/(\d+)", info)
    if not flush or not code:
        return 1
    print(f"tb_flushes {flush.group(1)} code_bytes {code.group(1)} of {code.group(2)}")
    return 0


def main():
    if sys.argv[1] == "--jit":
        sys.exit(jit(sys.argv[2]))
    if sys.argv[1] == "--status":
        st = monitor(sys.argv[2], "info status", timeout=5.0)
        m = re.search(r"VM status: (.*)", st)
        print(m.group(1).strip() if m else "unknown")
        sys.exit(0 if m else 1)
    if sys.argv[1] == "--quit":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5.0)
        s.connect(sys.argv[2])
        s.sendall(b"quit\n")
        time.sleep(0.5)
        s.close()
        sys.exit(0)
    sock, sysmap, out = sys.argv[1:4]
    regs = monitor(sock, "info registers -a")
    with open(out, "w") as f:
        f.write(regs[regs.find("\n") + 1:])  # the monitor's echo of the command first
    # "info lapic" takes an APIC ID: the vCPU index is one while CPUS (per socket) is a power of
    # two, as in every configuration of the test bed (QEMU packs core IDs into the APIC ID).
    cpus = re.findall(r"^CPU#(\d+)", regs, re.M)
    with open(out, "a") as f:
        for c in cpus:
            try:
                lapic = monitor(sock, f"info lapic {c}")
            except OSError as e:
                lapic = f"info lapic {c}: {e}\n"
            f.write(f"\nLAPIC of CPU#{c}\n" + lapic[lapic.find("\n") + 1:])
    addrs, names = symbols(sysmap)
    cpu = None
    for line in regs.splitlines():
        m = re.match(r"CPU#(\d+)", line)
        if m:
            cpu = m.group(1)
        m = re.search(r"RIP=([0-9a-f]+)", line)
        if m and cpu is not None:
            rip = int(m.group(1), 16)
            i = bisect.bisect_right(addrs, rip) - 1
            sym = f"{names[i]}+{rip - addrs[i]:#x}" if i >= 0 and rip - addrs[i] < 1 << 20 else "?"
            print(f"vCPU {cpu}: RIP {rip:#018x} {sym}")
        m = re.search(r"CR3=([0-9a-f]+)", line)
        if m and cpu is not None:
            print(f"vCPU {cpu}: CR3 {m.group(1)}")


if __name__ == "__main__":
    main()
