#!/usr/bin/env python3
"""Generate src/syscalls/generated.rs: system call numbers for every ABI sysjail filters.

Sources are Debian's UAPI headers (linux-libc-dev for amd64, arm64 and armhf), read
through the C preprocessor so that the generic table gets arm64's own #defines, plus
the calls numbered after the headers' kernel (6.1), which every ABI shares since 424.

    tools/gen-syscalls.sh        # fetches the headers, runs this, rustfmt's the output
"""
import re
import subprocess
import sys

# Calls added after Linux 6.1, with the number every ABI uses (the kernel has kept
# one number for all architectures since pidfd_send_signal, 424). uretprobe and
# uprobe are x86_64-only.
SINCE_6_1 = [
    (451, "cachestat"), (452, "fchmodat2"), (453, "map_shadow_stack"),
    (454, "futex_wake"), (455, "futex_wait"), (456, "futex_requeue"),
    (457, "statmount"), (458, "listmount"), (459, "lsm_get_self_attr"),
    (460, "lsm_set_self_attr"), (461, "lsm_list_modules"), (462, "mseal"),
    (463, "setxattrat"), (464, "getxattrat"), (465, "listxattrat"),
    (466, "removexattrat"), (467, "open_tree_attr"), (468, "file_getattr"),
    (469, "file_setattr"),
]
X86_64_ONLY = [(335, "uretprobe"), (336, "uprobe")]

# ARM-private calls live at __ARM_NR_BASE (0x0f0000); programs need set_tls and
# cacheflush, so the table names them.
ARM_PRIVATE = [
    (0x0F0001, "arm_breakpoint"), (0x0F0002, "arm_cacheflush"),
    (0x0F0003, "arm_usr26"), (0x0F0004, "arm_usr32"), (0x0F0005, "arm_set_tls"),
    (0x0F0006, "arm_get_tls"),
]


def defines(header, include, extra=""):
    base = include.rsplit("/", 1)[0]
    src = f"{extra}\n#include <{header}>\n"
    out = subprocess.run(
        ["gcc", "-E", "-dM", "-nostdinc", "-I", include, "-I", base, "-"],
        input=src, capture_output=True, text=True, check=True,
    ).stdout
    table = {}
    raw = {}
    for line in out.splitlines():
        m = re.match(r"#define __NR_(\w+) (.+)$", line)
        if m:
            raw[m.group(1)] = m.group(2).strip()
    # Resolve aliases such as __NR_fcntl -> __NR3264_fcntl -> 25 by evaluating
    # each value with the preprocessor's own definitions.
    names = sorted(raw)
    probe = "".join(f"{extra}\n#include <{header}>\n" for _ in [0])
    probe += "".join(f"sysjail_nr {n} __NR_{n}\n" for n in names)
    out = subprocess.run(
        ["gcc", "-E", "-P", "-nostdinc", "-I", include, "-I", base, "-"],
        input=probe, capture_output=True, text=True, check=True,
    ).stdout
    for line in out.splitlines():
        m = re.match(r"sysjail_nr (\w+) (.+)$", line)
        if not m:
            continue
        try:
            value = eval(m.group(2).replace("UL", ""), {}, {})
        except Exception:
            continue
        if isinstance(value, int) and not m.group(1).startswith("syscalls"):
            table[m.group(1)] = value
    for skip in ("syscalls", "arch_specific_syscall"):
        table.pop(skip, None)
    # Constants that share the __NR_ prefix (SYSCALL_BASE, SYSCALL_MASK on
    # arm) are not calls: every call's name is lower case.
    table = {name: nr for name, nr in table.items() if name == name.lower()}
    # arm's headers give sync_file_range2 a second name; keep the kernel's own.
    if table.get("arm_sync_file_range") == table.get("sync_file_range2"):
        table.pop("arm_sync_file_range", None)
    return table


def x86_tables(inc):
    x86_64 = defines("asm/unistd_64.h", f"{inc}/x86_64-linux-gnu")
    i386 = defines("asm/unistd_32.h", f"{inc}/x86_64-linux-gnu")
    for nr, name in SINCE_6_1:
        for t in (x86_64, i386):
            t.setdefault(name, nr)
    for nr, name in X86_64_ONLY:
        x86_64.setdefault(name, nr)
    return {"X86_64": x86_64, "I386": i386}


def main():
    if sys.argv[1] == "--x86":
        # `--x86 INCLUDE`: the x86_64 and i386 tables as "ABI name number"
        # lines, from the headers a machine has, for the test that holds
        # generated.rs to this generator (tests/syscalls.rs).
        for key, t in x86_tables(sys.argv[2]).items():
            for name, nr in sorted(t.items()):
                print(key, name, nr)
        return
    inc = sys.argv[1]  # a directory holding usr/include of the three packages
    x86 = x86_tables(inc)
    x86_64, i386 = x86["X86_64"], x86["I386"]
    aarch64 = defines("asm/unistd.h", f"{inc}/aarch64-linux-gnu", "#define __BITS_PER_LONG 64")
    arm = defines("asm/unistd.h", f"{inc}/arm-linux-gnueabihf", "#define __ARM_EABI__ 1")
    for nr, name in SINCE_6_1:
        for t in (aarch64, arm):
            t.setdefault(name, nr)
    for nr, name in ARM_PRIVATE:
        arm.setdefault(name, nr)
    # arm64 still lists the time32 aliases for 32-bit builds; at 64 bits they are
    # the plain calls and must not appear twice.
    tables = {"X86_64": x86_64, "I386": i386, "AARCH64": aarch64, "ARM": arm}
    for key, t in tables.items():
        by_nr = {}
        for name, nr in sorted(t.items()):
            by_nr.setdefault(nr, []).append(name)
        dups = {nr: n for nr, n in by_nr.items() if len(n) > 1}
        if dups:
            sys.exit(f"{key}: one number, several names: {dups}")
    names = sorted(set().union(*[t.keys() for t in tables.values()]))
    keywords = {"break"}
    ident = lambda n: f"r#{n}" if n in keywords else n
    w = sys.stdout.write
    w("// @generated by tools/gen-syscalls.py from Debian's linux-libc-dev UAPI headers.\n")
    w("// Do not edit by hand: rerun tools/gen-syscalls.sh.\n\n")
    w("/// Every system call that at least one of sysjail's ABIs knows, by its kernel name.\n")
    w("#[allow(non_camel_case_types, missing_docs)]\n")
    w("#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]\n")
    w("pub enum Sysno {\n")
    for n in names:
        w(f"    {ident(n)},\n")
    w("}\n\n")
    w("impl Sysno {\n")
    w("    /// All names, in alphabetical order.\n")
    w("    pub const ALL: &'static [Sysno] = &[\n")
    for n in names:
        w(f"        Sysno::{ident(n)},\n")
    w("    ];\n\n")
    w("    /// The kernel's name for the call.\n")
    w("    pub const fn name(self) -> &'static str {\n        match self {\n")
    for n in names:
        w(f"            Sysno::{ident(n)} => \"{n}\",\n")
    w("        }\n    }\n}\n\n")
    for key, t in tables.items():
        w(f"pub(super) static {key}: &[(Sysno, u32)] = &[\n")
        for name, nr in sorted(t.items(), key=lambda kv: kv[1]):
            w(f"    (Sysno::{ident(name)}, {nr:#x}),\n" if nr >= 0x0F0000 else f"    (Sysno::{ident(name)}, {nr}),\n")
        w("];\n\n")


main()
