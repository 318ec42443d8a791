//! The system call ABIs a filter can meet on this machine's kernel, each with its audit
//! architecture (what the kernel puts in seccomp_data.arch) and its table of numbers by name.
//!
//! The tables are those of the `syscalls` crate (generated from the kernel's syscall tables),
//! except x32's, which is x86_64's with the differences below.

use oci_spec::runtime::Arch;
use std::str::FromStr;

/// The ABIs a process can use on an x86_64 kernel: its own, i386 (compat, `int 0x80`) and x32
/// (x86_64's instructions and audit architecture, numbers with bit 30 set).
#[cfg(target_arch = "x86_64")]
mod tables {
    use super::*;

    pub const NATIVE: Abi = Abi {
        name: "x86_64",
        audit_arch: 0xC000_003E,
        word_args: false,
        multiplexed: |_| None,
        number: |name| {
            syscalls::x86_64::Sysno::from_str(name)
                .ok()
                .map(|s| s.id() as u32)
        },
    };
    pub const I386: Abi = Abi {
        name: "x86",
        audit_arch: 0x4000_0003,
        word_args: true,
        multiplexed: i386_multiplexed,
        number: |name| {
            syscalls::x86::Sysno::from_str(name)
                .ok()
                .map(|s| s.id() as u32)
        },
    };
    pub const X32: Abi = Abi {
        name: "x32",
        audit_arch: NATIVE.audit_arch,
        // libseccomp counts x32 among the 32-bit architectures.
        word_args: true,
        multiplexed: |_| None,
        number: x32_number,
    };
    pub const ALL: &[&Abi] = &[&NATIVE, &I386, &X32];
    pub const ARCHS: &[Arch] = &[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32];

    pub fn for_arch(arch: Arch) -> Option<&'static Abi> {
        match arch {
            Arch::ScmpArchNative | Arch::ScmpArchX86_64 => Some(&NATIVE),
            Arch::ScmpArchX86 => Some(&I386),
            Arch::ScmpArchX32 => Some(&X32),
            _ => None,
        }
    }

    /// Bit 30 marks an x32 system call number (arch/x86/include/uapi/asm/unistd.h).
    pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

    /// The x86_64 calls x32 reaches under numbers of its own (512 and up) because their
    /// arguments hold pointers to structures laid out differently, and those x32 lacks.
    /// Made from Linux 6.1's asm/unistd_x32.h and asm/unistd_64.h (Debian's linux-libc-dev) by
    /// listing the names whose numbers differ and the names missing from unistd_x32.h.
    const X32_RENUMBERED: &[(&str, u32)] = &[
        ("rt_sigaction", 512),
        ("rt_sigreturn", 513),
        ("ioctl", 514),
        ("readv", 515),
        ("writev", 516),
        ("recvfrom", 517),
        ("sendmsg", 518),
        ("recvmsg", 519),
        ("execve", 520),
        ("ptrace", 521),
        ("rt_sigpending", 522),
        ("rt_sigtimedwait", 523),
        ("rt_sigqueueinfo", 524),
        ("sigaltstack", 525),
        ("timer_create", 526),
        ("mq_notify", 527),
        ("kexec_load", 528),
        ("waitid", 529),
        ("set_robust_list", 530),
        ("get_robust_list", 531),
        ("vmsplice", 532),
        ("move_pages", 533),
        ("preadv", 534),
        ("pwritev", 535),
        ("rt_tgsigqueueinfo", 536),
        ("recvmmsg", 537),
        ("sendmmsg", 538),
        ("process_vm_readv", 539),
        ("process_vm_writev", 540),
        ("setsockopt", 541),
        ("getsockopt", 542),
        ("io_setup", 543),
        ("io_submit", 544),
        ("execveat", 545),
        ("preadv2", 546),
        ("pwritev2", 547),
    ];
    const X32_ABSENT: &[&str] = &[
        "uselib",
        "_sysctl",
        "create_module",
        "get_kernel_syms",
        "query_module",
        "nfsservctl",
        "set_thread_area",
        "get_thread_area",
        "epoll_ctl_old",
        "epoll_wait_old",
        "vserver",
    ];

    /// i386 reaches the socket calls through socketcall (102) and the System V IPC calls
    /// through ipc (117) as well as directly, the first argument saying which call
    /// (linux/net.h SYS_*, linux/ipc.h); libseccomp extends a rule on one of them to the
    /// multiplexer with that first argument.
    fn i386_multiplexed(name: &str) -> Option<(u32, u32)> {
        const SOCKETCALL: &[&str] = &[
            "socket",
            "bind",
            "connect",
            "listen",
            "accept",
            "getsockname",
            "getpeername",
            "socketpair",
            "send",
            "recv",
            "sendto",
            "recvfrom",
            "shutdown",
            "setsockopt",
            "getsockopt",
            "sendmsg",
            "recvmsg",
            "accept4",
            "recvmmsg",
            "sendmmsg",
        ];
        const IPC: &[(&str, u32)] = &[
            ("semop", 1),
            ("semget", 2),
            ("semctl", 3),
            ("semtimedop", 4),
            ("msgsnd", 11),
            ("msgrcv", 12),
            ("msgget", 13),
            ("msgctl", 14),
            ("shmat", 21),
            ("shmdt", 22),
            ("shmget", 23),
            ("shmctl", 24),
        ];
        if let Some(i) = SOCKETCALL.iter().position(|n| *n == name) {
            return Some((102, i as u32 + 1));
        }
        IPC.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, call)| (117, *call))
    }

    fn x32_number(name: &str) -> Option<u32> {
        if X32_ABSENT.contains(&name) {
            return None;
        }
        let number = match X32_RENUMBERED.iter().find(|(n, _)| *n == name) {
            Some((_, number)) => *number,
            None => (NATIVE.number)(name)?,
        };
        Some(X32_SYSCALL_BIT | number)
    }

    /// What the kernel does with an x32 number on x86_64 is decided after seccomp; a filter
    /// without x32 must not let those numbers through as x86_64 ones.
    pub fn native_rejects_above(abis: &[&Abi]) -> Option<u32> {
        (!abis.iter().any(|a| a.name == X32.name)).then_some(X32_SYSCALL_BIT)
    }
}

/// The ABIs of an aarch64 kernel: its own and 32-bit arm (compat).
#[cfg(target_arch = "aarch64")]
mod tables {
    use super::*;

    pub const NATIVE: Abi = Abi {
        name: "aarch64",
        audit_arch: 0xC000_00B7,
        word_args: false,
        multiplexed: |_| None,
        number: |name| {
            syscalls::aarch64::Sysno::from_str(name)
                .ok()
                .map(|s| s.id() as u32)
        },
    };
    pub const ARM: Abi = Abi {
        name: "arm",
        audit_arch: 0x4000_0028,
        word_args: true,
        multiplexed: |_| None,
        number: |name| {
            syscalls::arm::Sysno::from_str(name)
                .ok()
                .map(|s| s.id() as u32)
        },
    };
    pub const ALL: &[&Abi] = &[&NATIVE, &ARM];
    pub const ARCHS: &[Arch] = &[Arch::ScmpArchAarch64, Arch::ScmpArchArm];

    pub fn for_arch(arch: Arch) -> Option<&'static Abi> {
        match arch {
            Arch::ScmpArchNative | Arch::ScmpArchAarch64 => Some(&NATIVE),
            Arch::ScmpArchArm => Some(&ARM),
            _ => None,
        }
    }

    pub fn native_rejects_above(_: &[&Abi]) -> Option<u32> {
        None
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("common::seccomp knows the system call ABIs of x86_64 and aarch64 only");

pub(super) use tables::{for_arch, native_rejects_above, ALL, ARCHS, NATIVE};

/// One system call ABI.
pub(super) struct Abi {
    /// libseccomp's name of it, for messages.
    pub name: &'static str,
    /// AUDIT_ARCH_* (linux/audit.h): seccomp_data.arch of its calls.
    pub audit_arch: u32,
    /// Only the low half of seccomp_data.args[i] is compared, as libseccomp does for its
    /// 32-bit architectures.
    pub word_args: bool,
    /// The multiplexing call that also reaches `name`, and its first argument for it.
    pub multiplexed: fn(&str) -> Option<(u32, u32)>,
    pub number: fn(&str) -> Option<u32>,
}

/// Whether `name` is a system call of some architecture: libseccomp resolves a name known on
/// any architecture without complaint (the rule then applies where the call exists), and crun
/// warns only about names it knows nowhere.
pub(super) fn is_known(name: &str) -> bool {
    ALL.iter().any(|abi| (abi.number)(name).is_some())
        || super::libseccomp_names::LIBSECCOMP_NAMES
            .binary_search(&name)
            .is_ok()
}
