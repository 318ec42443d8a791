//! The compiler checked two ways: its BPF run through a small interpreter against the rules'
//! meaning (including generated rule sets, large enough to need long jumps), and filters
//! loaded into forked children whose system calls then get what crun's filter would give.

use super::*;
use proptest::prelude::*;
use serde_json::json;

const X86_64: u32 = 0xC000_003E;
const I386: u32 = 0x4000_0003;
const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const KILL_THREAD: u32 = libc::SECCOMP_RET_KILL_THREAD;

fn errno_action(errno: i32) -> u32 {
    libc::SECCOMP_RET_ERRNO | errno as u32
}

/// The action a seccomp program returns for one call.
fn run(program: &[libc::sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    interpret(program, arch, nr, args).0
}

/// Runs a seccomp program on one call, as the kernel's classic BPF interpreter does: the
/// action it returns and how many instructions it ran.
fn interpret(program: &[libc::sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> (u32, usize) {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_ne_bytes());
    data[4..8].copy_from_slice(&arch.to_ne_bytes());
    for (i, arg) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&arg.to_ne_bytes());
    }
    let mut acc: u32 = 0;
    let mut pc = 0;
    for step in 1.. {
        let insn = program[pc];
        let (code, k) = (insn.code as u32, insn.k);
        pc += 1;
        match code {
            c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => {
                let at = k as usize;
                acc = u32::from_ne_bytes(data[at..at + 4].try_into().unwrap());
            }
            c if c == libc::BPF_ALU | libc::BPF_AND | libc::BPF_K => acc &= k,
            c if c == libc::BPF_RET | libc::BPF_K => return (k, step),
            c if c == libc::BPF_JMP | libc::BPF_JA => pc += k as usize,
            c => {
                let holds = match c & !(libc::BPF_JMP | libc::BPF_K) {
                    op if op == libc::BPF_JEQ => acc == k,
                    op if op == libc::BPF_JSET => acc & k != 0,
                    op if op == libc::BPF_JGT => acc > k,
                    op if op == libc::BPF_JGE => acc >= k,
                    _ => panic!("unexpected BPF instruction {code:#x}"),
                };
                pc += if holds { insn.jt } else { insn.jf } as usize;
            }
        }
    }
    unreachable!("a program ends with a return")
}

/// What the rules mean, evaluated directly.
fn meaning(arches: &[ArchRules], default: u32, arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let Some(rules) = arches.iter().find(|a| a.audit_arch == arch) else {
        return KILL_THREAD;
    };
    if rules
        .bad_from
        .is_some_and(|from| nr >= from && nr != u32::MAX)
    {
        return KILL_THREAD;
    }
    let holds = |c: &Condition| {
        let narrow = |v: u64| if c.low_half_only { v as u32 as u64 } else { v };
        let (arg, value) = (narrow(args[c.index as usize]), narrow(c.value));
        match c.op {
            LinuxSeccompOperator::ScmpCmpEq => arg == value,
            LinuxSeccompOperator::ScmpCmpNe => arg != value,
            LinuxSeccompOperator::ScmpCmpLt => arg < value,
            LinuxSeccompOperator::ScmpCmpLe => arg <= value,
            LinuxSeccompOperator::ScmpCmpGt => arg > value,
            LinuxSeccompOperator::ScmpCmpGe => arg >= value,
            LinuxSeccompOperator::ScmpCmpMaskedEq => arg & value == narrow(c.value_two),
        }
    };
    match rules.calls.get(&nr) {
        None => default,
        Some(Decision::Always(action)) => *action,
        Some(Decision::FirstOf(list)) => list
            .iter()
            .find(|r| r.conditions.iter().all(holds))
            .map_or(default, |r| r.action),
    }
}

fn profile(value: serde_json::Value) -> LinuxSeccomp {
    serde_json::from_value(value).expect("a valid OCI seccomp profile")
}

fn compile(value: serde_json::Value) -> Filter {
    Filter::compile(&profile(value)).expect("the profile compiles")
}

fn nr(name: &str) -> u32 {
    (abi::NATIVE.number)(name).unwrap()
}

/// The outcome of one x86_64 call under `filter`, by the interpreter.
fn outcome(filter: &Filter, name: &str, args: [u64; 6]) -> u32 {
    run(&filter.program, X86_64, nr(name), args)
}

#[test]
fn default_action_and_rule_actions_with_their_errno_values() {
    let filter = compile(json!({
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
        "syscalls": [
            {"names": ["mkdir", "rmdir"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["chdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22},
            {"names": ["kill"], "action": "SCMP_ACT_KILL"},
            {"names": ["tkill"], "action": "SCMP_ACT_KILL_PROCESS"},
            {"names": ["tgkill"], "action": "SCMP_ACT_KILL_THREAD"},
            {"names": ["pause"], "action": "SCMP_ACT_TRAP"},
            {"names": ["alarm"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
            {"names": ["getppid"], "action": "SCMP_ACT_LOG"},
            {"names": ["getuid"], "action": "SCMP_ACT_NOTIFY"},
        ]
    }));
    let z = [0; 6];
    assert_eq!(outcome(&filter, "mkdir", z), errno_action(libc::EPERM));
    assert_eq!(outcome(&filter, "rmdir", z), errno_action(libc::EPERM));
    assert_eq!(outcome(&filter, "getpid", z), ALLOW);
    assert_eq!(outcome(&filter, "chdir", z), errno_action(libc::EINVAL));
    assert_eq!(outcome(&filter, "kill", z), KILL_THREAD);
    assert_eq!(outcome(&filter, "tkill", z), libc::SECCOMP_RET_KILL_PROCESS);
    assert_eq!(outcome(&filter, "tgkill", z), KILL_THREAD);
    assert_eq!(outcome(&filter, "pause", z), libc::SECCOMP_RET_TRAP);
    assert_eq!(outcome(&filter, "alarm", z), libc::SECCOMP_RET_TRACE | 7);
    assert_eq!(outcome(&filter, "getppid", z), libc::SECCOMP_RET_LOG);
    assert_eq!(outcome(&filter, "getuid", z), libc::SECCOMP_RET_USER_NOTIF);
    assert_eq!(outcome(&filter, "open", z), errno_action(libc::ENOSYS));
    assert_eq!(
        run(&filter.program, X86_64, 100_000, z),
        errno_action(libc::ENOSYS)
    );
    assert!(filter.has_listener());
    assert!(filter.warnings().is_empty());
}

#[test]
fn what_crun_refuses_is_refused_with_the_reason() {
    let refused = |value: serde_json::Value, reason: &str| {
        let err = Filter::compile(&profile(value)).err().expect("refused");
        assert!(format!("{err:#}").contains(reason), "{err:#}");
    };
    refused(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}),
        "the default action: an errno value is only allowed with SCMP_ACT_ERRNO",
    );
    refused(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_KILL", "errnoRet": 1}]}),
        "rule 1 (mkdir): an errno value is only allowed",
    );
    refused(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
        "argument index 6 is over 5",
    );
    refused(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 1, "value": 1, "op": "SCMP_CMP_EQ"}]},
            {"names": ["rmdir", "mkdir"], "action": "SCMP_ACT_LOG",
             "args": [{"index": 1, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
        "rule 2 (rmdir, mkdir): `mkdir` has another rule with the same conditions",
    );
    refused(
        json!({"defaultAction": "SCMP_ACT_NOTIFY"}),
        "SCMP_ACT_NOTIFY cannot be the default action",
    );
    // Names oci-spec does not know are refused when config.json is read.
    assert!(
        serde_json::from_value::<LinuxSeccomp>(json!({"defaultAction": "SCMP_ACT_SOMETHING"}))
            .is_err()
    );
}

#[test]
fn unknown_names_are_skipped_with_a_warning() {
    let filter = compile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["no_such_call", "mkdir", "socketcall"], "action": "SCMP_ACT_ERRNO"}]
    }));
    assert_eq!(
        filter.warnings(),
        ["unknown seccomp syscall `no_such_call` ignored"]
    );
    assert_eq!(outcome(&filter, "mkdir", [0; 6]), errno_action(libc::EPERM));
}

#[test]
fn rules_merge_as_libseccomp_merges_them() {
    let eq = |index: u32, value: u64| json!({"index": index, "value": value, "op": "SCMP_CMP_EQ"});
    let filter = compile(json!({
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
        "syscalls": [
            // A rule with the default action is left out: getpid stays decided by the next one.
            {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["getpid"], "action": "SCMP_ACT_ALLOW", "args": [eq(0, 1)]},
            // The first unconditional rule decides; conditional rules before or after it go.
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5, "args": [eq(0, 1)]},
            {"names": ["mkdir"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 6},
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 7, "args": [eq(0, 2)]},
            // Conditions on different arguments are ANDed, rules ORed in order.
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "args": [eq(0, 1), eq(1, 9)]},
            {"names": ["kill"], "action": "SCMP_ACT_ALLOW", "args": [eq(0, 2)]},
            // A rule covering another's calls replaces it, in either order.
            {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "args": [eq(0, 1), eq(1, 9)]},
            {"names": ["rmdir"], "action": "SCMP_ACT_ALLOW", "args": [eq(1, 9)]},
            {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 2, "args": [eq(1, 9), eq(2, 3)]},
            // Two conditions on one argument: one rule each, ORed (crun).
            {"names": ["chdir"], "action": "SCMP_ACT_ALLOW", "args": [eq(0, 3), eq(0, 4)]},
        ]
    }));
    let enosys = errno_action(libc::ENOSYS);
    let with = |a0: u64, a1: u64| [a0, a1, 0, 0, 0, 0];
    assert_eq!(outcome(&filter, "getpid", with(1, 0)), ALLOW);
    assert_eq!(outcome(&filter, "getpid", with(2, 0)), enosys);
    for a0 in [0, 1, 2] {
        assert_eq!(outcome(&filter, "mkdir", with(a0, 0)), ALLOW);
    }
    assert_eq!(
        outcome(&filter, "kill", with(1, 9)),
        errno_action(libc::EPERM)
    );
    assert_eq!(outcome(&filter, "kill", with(2, 9)), ALLOW);
    assert_eq!(outcome(&filter, "kill", with(1, 8)), enosys);
    assert_eq!(outcome(&filter, "rmdir", with(1, 9)), ALLOW);
    assert_eq!(outcome(&filter, "rmdir", [0, 9, 3, 0, 0, 0]), ALLOW);
    assert_eq!(outcome(&filter, "rmdir", with(1, 8)), enosys);
    assert_eq!(outcome(&filter, "chdir", with(3, 0)), ALLOW);
    assert_eq!(outcome(&filter, "chdir", with(4, 0)), ALLOW);
    assert_eq!(outcome(&filter, "chdir", with(5, 0)), enosys);
}

#[test]
fn architectures_native_listed_and_others_killed() {
    let rules = json!([{"names": ["getpid", "socketcall"], "action": "SCMP_ACT_ALLOW"},
                      {"names": ["ioctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 25}]);
    let z = [0; 6];
    // Native only (libseccomp starts with it even when the list lacks it).
    let native = compile(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": rules,
                                "architectures": ["SCMP_ARCH_X86"]}));
    let eperm = errno_action(libc::EPERM);
    assert_eq!(run(&native.program, X86_64, 39, z), ALLOW);
    assert_eq!(run(&native.program, X86_64, 102, z), eperm);
    // i386 has its own numbers: getpid 20, socketcall 102 (a call x86_64 lacks), ioctl 54.
    assert_eq!(run(&native.program, I386, 20, z), ALLOW);
    assert_eq!(run(&native.program, I386, 102, z), ALLOW);
    assert_eq!(
        run(&native.program, I386, 54, z),
        errno_action(libc::ENOTTY)
    );
    assert_eq!(run(&native.program, I386, 39, z), eperm);
    // x32 not listed: its numbers (bit 30) are a bad architecture, as is an unknown one.
    assert_eq!(run(&native.program, X86_64, 0x4000_0027, z), KILL_THREAD);
    assert_eq!(run(&native.program, X86_64, 0xffff_fffe, z), KILL_THREAD);
    // -1 (a call a tracer skipped) goes to the default action, as libseccomp lets it.
    assert_eq!(run(&native.program, X86_64, u32::MAX, z), eperm);
    assert_eq!(run(&native.program, 0xC000_00B7, 39, z), KILL_THREAD);

    let all = compile(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": rules,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32",
                          "SCMP_ARCH_AARCH64", "SCMP_ARCH_S390X"]}));
    assert_eq!(run(&all.program, X86_64, 0x4000_0027, z), ALLOW);
    // x32's ioctl is 514, not x86_64's 16.
    assert_eq!(
        run(&all.program, X86_64, 0x4000_0202, z),
        errno_action(libc::ENOTTY)
    );
    assert_eq!(run(&all.program, X86_64, 0x4000_0010, z), eperm);
    assert_eq!(run(&all.program, X86_64, 16, z), errno_action(libc::ENOTTY));
    assert_eq!(run(&all.program, X86_64, u32::MAX, z), eperm);
    assert_eq!(run(&all.program, I386, 20, z), ALLOW);
}

#[test]
fn argument_conditions_compare_64_bit_values_by_halves() {
    // (operator, value, valueTwo, [(argument, whether the condition holds)])
    type Case<'a> = (&'a str, u64, u64, &'a [(u64, bool)]);
    let cases: &[Case] = &[
        (
            "SCMP_CMP_EQ",
            0x1_0000_0005,
            0,
            &[(0x1_0000_0005, true), (5, false), (0x2_0000_0005, false)],
        ),
        (
            "SCMP_CMP_NE",
            0x1_0000_0005,
            0,
            &[(0x1_0000_0005, false), (5, true), (0x1_0000_0006, true)],
        ),
        (
            "SCMP_CMP_GT",
            0x1_0000_0005,
            0,
            &[
                (0x1_0000_0006, true),
                (0x1_0000_0005, false),
                (0x2_0000_0000, true),
                (0xffff_ffff, false),
            ],
        ),
        (
            "SCMP_CMP_GE",
            0x1_0000_0005,
            0,
            &[
                (0x1_0000_0005, true),
                (0x1_0000_0004, false),
                (0x2_0000_0000, true),
                (6, false),
            ],
        ),
        (
            "SCMP_CMP_LT",
            0x1_0000_0005,
            0,
            &[
                (0x1_0000_0004, true),
                (0x1_0000_0005, false),
                (0xffff_ffff, true),
                (0x2_0000_0000, false),
            ],
        ),
        (
            "SCMP_CMP_LE",
            0x1_0000_0005,
            0,
            &[
                (0x1_0000_0005, true),
                (0x1_0000_0006, false),
                (6, true),
                (u64::MAX, false),
            ],
        ),
        (
            "SCMP_CMP_MASKED_EQ",
            0xff_0000_00ff,
            0x12_0000_0034,
            &[
                (0x12_5555_5534, true),
                (0x13_0000_0034, false),
                (0x12_0000_0035, false),
            ],
        ),
    ];
    for (op, value, value_two, checks) in cases {
        let filter = compile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 99,
                          "args": [{"index": 3, "value": value, "valueTwo": value_two, "op": op}]}]
        }));
        for (arg, holds) in *checks {
            let got = outcome(&filter, "getpid", [0, 0, 0, *arg, 0, 0]);
            let want = if *holds { errno_action(99) } else { ALLOW };
            assert_eq!(got, want, "{op} {value:#x} on {arg:#x}");
        }
    }
}

#[test]
fn podman_default_profile_compiles_small_and_as_crun_enforces_it() {
    let filter = Filter::compile(&podman_default_profile()).unwrap();
    assert!(filter.warnings().is_empty(), "{:?}", filter.warnings());
    // A search tree, not a list: 408 instructions for x86_64, x32 and x86 (libseccomp's
    // filter for the same profile has 1144, crun's cache of it likewise), and a call runs at
    // most 20 of them (socket's conditions included) where libseccomp's runs up to ~700.
    assert!(filter.len() < 450, "{} instructions", filter.len());
    let deepest = (0..1100)
        .map(|n| (X86_64, n))
        .chain((0..1100).map(|n| (X86_64, n | 0x4000_0000)))
        .chain((0..1100).map(|n| (I386, n)))
        .map(|(arch, n)| steps(&filter.program, arch, n))
        .max()
        .unwrap();
    assert!(deepest <= 24, "{deepest} steps at most");

    let z = [0; 6];
    let enosys = errno_action(libc::ENOSYS);
    assert_eq!(outcome(&filter, "read", z), ALLOW);
    assert_eq!(outcome(&filter, "io_uring_setup", z), enosys);
    assert_eq!(outcome(&filter, "bpf", z), errno_action(libc::EPERM));
    assert_eq!(
        outcome(&filter, "personality", [0xffff_ffff, 0, 0, 0, 0, 0]),
        ALLOW
    );
    assert_eq!(
        outcome(&filter, "personality", [0x0040_0000, 0, 0, 0, 0, 0]),
        enosys
    );
    assert_eq!(
        outcome(&filter, "socket", [16, 3, 9, 0, 0, 0]),
        errno_action(libc::EINVAL)
    );
    assert_eq!(outcome(&filter, "socket", [16, 3, 0, 0, 0, 0]), ALLOW);
    assert_eq!(run(&filter.program, I386, 102, z), ALLOW);
}

/// How many instructions the program runs for call `nr`.
fn steps(program: &[libc::sock_filter], arch: u32, nr: u32) -> usize {
    interpret(program, arch, nr, [0; 6]).1
}

/// Podman's default profile (Debian's golang-github-containers-common) turned into the OCI
/// profile podman writes into config.json for an x86_64 container with podman's default
/// capabilities: rules kept or dropped by their `includes` and `excludes`, the architecture
/// with its subarchitectures from `archMap`.
fn podman_default_profile() -> LinuxSeccomp {
    const PATH: &str = "/usr/share/containers/seccomp.json";
    let text = std::fs::read_to_string(PATH)
        .unwrap_or_else(|e| panic!("{PATH} (Debian package golang-github-containers-common): {e}"));
    let podman: serde_json::Value = serde_json::from_str(&text).unwrap();
    let caps = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SETFCAP",
        "CAP_SETGID",
        "CAP_SETPCAP",
        "CAP_SETUID",
        "CAP_SYS_CHROOT",
    ];
    let list = |v: &serde_json::Value, key: &str| -> Vec<String> {
        v.get(key)
            .and_then(|l| l.as_array())
            .map(|l| l.iter().map(|s| s.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    let mut syscalls = Vec::new();
    for rule in podman["syscalls"].as_array().unwrap() {
        let (includes, excludes) = (&rule["includes"], &rule["excludes"]);
        let arches = list(includes, "arches");
        if !arches.is_empty() && !arches.iter().any(|a| a == "amd64") {
            continue;
        }
        if !list(includes, "caps")
            .iter()
            .all(|c| caps.contains(&c.as_str()))
        {
            continue;
        }
        if list(excludes, "arches").iter().any(|a| a == "amd64")
            || list(excludes, "caps")
                .iter()
                .any(|c| caps.contains(&c.as_str()))
        {
            continue;
        }
        let mut oci = json!({"names": rule["names"], "action": rule["action"]});
        for key in ["errnoRet", "args"] {
            if !rule[key].is_null() {
                oci[key] = rule[key].clone();
            }
        }
        syscalls.push(oci);
    }
    let arch_map = podman["archMap"].as_array().unwrap();
    let x86_64 = arch_map
        .iter()
        .find(|a| a["architecture"] == "SCMP_ARCH_X86_64")
        .unwrap();
    let mut architectures = vec![x86_64["architecture"].clone()];
    architectures.extend(
        x86_64["subArchitectures"]
            .as_array()
            .unwrap()
            .iter()
            .cloned(),
    );
    profile(json!({
        "defaultAction": podman["defaultAction"],
        "defaultErrnoRet": podman["defaultErrnoRet"],
        "architectures": architectures,
        "syscalls": syscalls,
    }))
}

/// A C program that builds a filter with libseccomp the way crun does (seccomp_init with the
/// default action, seccomp_arch_add, seccomp_rule_add_array per resolved name) from lines
/// `default ACTION`, `arch TOKEN`, `rule ACTION NAME COUNT (ARG OP A B)*`, and writes its BPF.
/// For podman's default profile its output is byte for byte the seccomp.bpf that crun 1.8.1
/// (Debian 12) writes into its state directory for a container with that profile.
const LIBSECCOMP_BUILDER: &str = r#"
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
int main(void) {
    unsigned long long def, a, b, action;
    unsigned n, arg, op, i;
    char word[64], name[64];
    struct scmp_arg_cmp cmp[6];
    if (scanf("default %llu", &def) != 1) return 2;
    scmp_filter_ctx ctx = seccomp_init(def);
    if (!ctx) return 3;
    while (scanf("%63s", word) == 1) {
        if (!strcmp(word, "arch")) {
            if (scanf("%llu", &a) != 1) return 2;
            int r = seccomp_arch_add(ctx, a);
            if (r < 0 && r != -EEXIST) return 4;
        } else {
            if (scanf("%llu %63s %u", &action, name, &n) != 3 || n > 6) return 2;
            for (i = 0; i < n; i++) {
                if (scanf("%u %u %llu %llu", &arg, &op, &a, &b) != 4) return 2;
                cmp[i] = (struct scmp_arg_cmp){arg, op, a, b};
            }
            int nr = seccomp_syscall_resolve_name(name);
            if (nr == __NR_SCMP_ERROR) continue;
            if (seccomp_rule_add_array(ctx, action, nr, n, cmp) < 0) return 5;
        }
    }
    return seccomp_export_bpf(ctx, 1) < 0 ? 6 : 0;
}
"#;

/// libseccomp's BPF for `profile`, fed as crun feeds it: rules with the default action left
/// out, several conditions on one argument split into one rule each.
fn libseccomp_program(profile: &LinuxSeccomp) -> Vec<libc::sock_filter> {
    use std::io::Write;
    static BUILDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let build = BUILDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir =
        std::env::temp_dir().join(format!("seccomp-libseccomp.{}.{build}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (source, binary) = (dir.join("build.c"), dir.join("build"));
    std::fs::write(&source, LIBSECCOMP_BUILDER).unwrap();
    let built = std::process::Command::new("cc")
        .arg(&source)
        .arg("-o")
        .arg(&binary)
        .arg("-lseccomp")
        .status()
        .expect("cc (Debian packages gcc and libseccomp-dev)");
    assert!(
        built.success(),
        "building the libseccomp program (needs libseccomp-dev)"
    );

    let default = action_value(profile.default_action(), profile.default_errno_ret(), "").unwrap();
    let mut input = format!("default {default}\n");
    for arch in profile.architectures().iter().flatten() {
        input += &format!("arch {}\n", *arch as u32);
    }
    for syscall in profile.syscalls().iter().flatten() {
        let action = action_value(syscall.action(), syscall.errno_ret(), "").unwrap();
        if action == default {
            continue;
        }
        let conditions: Vec<Condition> = syscall
            .args()
            .iter()
            .flatten()
            .map(|a| Condition {
                index: a.index() as u32,
                op: a.op(),
                value: a.value(),
                value_two: a.value_two().unwrap_or(0),
                low_half_only: false,
            })
            .collect();
        let rules = if syscall.args().is_some() {
            split_same_argument(action, conditions)
        } else {
            vec![Rule { action, conditions }]
        };
        for name in syscall.names() {
            for rule in &rules {
                input += &format!("rule {action} {name} {}", rule.conditions.len());
                for c in &rule.conditions {
                    input += &format!(" {} {} {} {}", c.index, c.op as u32, c.value, c.value_two);
                }
                input += "\n";
            }
        }
    }
    let mut child = std::process::Command::new(&binary)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        output.status.success(),
        "libseccomp refused the profile: {}",
        output.status
    );
    output
        .stdout
        .chunks_exact(8)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect()
}

/// Every call number of every ABI, and for the calls with conditions every combination of the
/// values the conditions name (and their neighbours) in the arguments they test, decided by
/// our filter and by libseccomp's.
fn assert_decides_as_libseccomp(profile: &LinuxSeccomp) -> (usize, usize) {
    let ours = Filter::compile(profile).unwrap();
    let theirs = libseccomp_program(profile);
    let mut values = vec![0u64, 1, 0xffff_ffff, 0x1_0000_0000, u64::MAX];
    let mut conditional = Vec::new();
    for syscall in profile.syscalls().iter().flatten() {
        for arg in syscall.args().iter().flatten() {
            for v in [arg.value(), arg.value_two().unwrap_or(0)] {
                values.extend([v, v.wrapping_add(1), v.wrapping_sub(1), v | 0x1_0000_0000]);
            }
            conditional.extend(syscall.names().iter().cloned());
        }
    }
    values.sort();
    values.dedup();
    let numbers: Vec<u32> = (0..1100)
        .chain((0..1100).map(|n| n | 0x4000_0000))
        .chain([0x3fff_ffff, 0x7fff_ffff, 0xffff_fffe, u32::MAX])
        .collect();
    for arch in [X86_64, I386, 0xC000_00B7] {
        for &nr in &numbers {
            let z = [0; 6];
            assert_eq!(
                run(&ours.program, arch, nr, z),
                run(&theirs, arch, nr, z),
                "arch {arch:#x} call {nr:#x}"
            );
        }
        // i386's multiplexers, by the call they stand for.
        for nr in [102, 117] {
            for call in 0..30 {
                for &b in &values {
                    let args = [call, b, b, 0, 0, 0];
                    assert_eq!(
                        run(&ours.program, arch, nr, args),
                        run(&theirs, arch, nr, args),
                        "arch {arch:#x} call {nr} {args:x?}"
                    );
                }
            }
        }
        for name in &conditional {
            let abis = abi::ALL.iter().filter(|a| a.audit_arch == arch);
            for nr in abis.filter_map(|a| (a.number)(name)) {
                for &a in &values {
                    for &b in &values {
                        for &c in &values {
                            let args = [a, b, c, a, b, c];
                            assert_eq!(
                                run(&ours.program, arch, nr, args),
                                run(&theirs, arch, nr, args),
                                "arch {arch:#x} {name} ({nr:#x}) {args:x?}"
                            );
                        }
                    }
                }
            }
        }
    }
    (ours.len(), theirs.len())
}

#[test]
fn podman_default_profile_decided_exactly_as_by_libseccomp() {
    let (ours, theirs) = assert_decides_as_libseccomp(&podman_default_profile());
    eprintln!("podman's default profile: {ours} instructions, libseccomp's {theirs}");
}

const VALUES: &[u64] = &[
    0,
    1,
    2,
    0xff,
    0xffff_ffff,
    0x1_0000_0000,
    0x1_0000_0001,
    0xff_0000_00ff,
    u64::MAX,
];
const OPS: &[LinuxSeccompOperator] = &[
    LinuxSeccompOperator::ScmpCmpEq,
    LinuxSeccompOperator::ScmpCmpNe,
    LinuxSeccompOperator::ScmpCmpLt,
    LinuxSeccompOperator::ScmpCmpLe,
    LinuxSeccompOperator::ScmpCmpGt,
    LinuxSeccompOperator::ScmpCmpGe,
    LinuxSeccompOperator::ScmpCmpMaskedEq,
];
const ACTIONS: &[u32] = &[
    libc::SECCOMP_RET_ALLOW,
    libc::SECCOMP_RET_ERRNO | 1,
    libc::SECCOMP_RET_ERRNO | 22,
    libc::SECCOMP_RET_KILL_PROCESS,
    libc::SECCOMP_RET_LOG,
];

fn conditions() -> impl Strategy<Value = Condition> {
    use prop::sample::select;
    (
        0u32..6,
        select(OPS),
        select(VALUES),
        select(VALUES),
        any::<bool>(),
    )
        .prop_map(|(index, op, value, value_two, low_half_only)| Condition {
            index,
            op,
            value,
            value_two,
            low_half_only,
        })
}

fn decisions() -> impl Strategy<Value = Decision> {
    use prop::collection::vec;
    use prop::sample::select;
    let rule = (select(ACTIONS), vec(conditions(), 0..3))
        .prop_map(|(action, conditions)| Rule { action, conditions });
    prop_oneof![
        select(ACTIONS).prop_map(Decision::Always),
        vec(rule, 1..4).prop_map(Decision::FirstOf),
    ]
}

fn arch_rules(audit_arch: u32) -> impl Strategy<Value = ArchRules> {
    (
        prop::collection::btree_map(0u32..700, decisions(), 0..120),
        any::<bool>(),
    )
        .prop_map(move |(calls, x32_absent)| ArchRules {
            audit_arch,
            calls,
            bad_from: x32_absent.then_some(600),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Generated rule sets, some large enough that jumps need trampolines: the program decides
    /// every call as the rules say.
    #[test]
    fn generated_programs_decide_as_their_rules(
        native in arch_rules(X86_64),
        compat in arch_rules(I386),
        default in prop::sample::select(ACTIONS),
        calls in prop::collection::vec(
            (0u32..720, prop::array::uniform6(prop::sample::select(VALUES))), 200),
    ) {
        let arches = [native, compat];
        let program = generate(&arches, default).unwrap();
        for arch in [X86_64, I386, 0xC000_00B7] {
            for (nr, args) in &calls {
                prop_assert_eq!(
                    run(&program, arch, *nr, *args),
                    meaning(&arches, default, arch, *nr, *args),
                    "arch {:#x} call {} args {:x?}", arch, nr, args
                );
            }
        }
    }
}

#[test]
fn far_jumps_go_through_trampolines() {
    // 300 calls with conditions put the shared returns more than 255 instructions away.
    let rules: Vec<_> = (0..300)
        .map(|n| {
            json!({"names": [syscalls::x86_64::Sysno::new(n).map_or("read", |s| s.name())],
                   "action": "SCMP_ACT_ERRNO", "errnoRet": 1 + n % 7,
                   "args": [{"index": n % 6, "value": n, "op": "SCMP_CMP_EQ"}]})
        })
        .collect();
    let filter = compile(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}));
    assert!(filter.len() > 1000);
    let trampolines = filter
        .program
        .iter()
        .filter(|i| i.code as u32 == libc::BPF_JMP | libc::BPF_JA)
        .count();
    assert!(trampolines > 0);
    for n in 0..300u32 {
        let Some(call) = syscalls::x86_64::Sysno::new(n as usize) else {
            continue;
        };
        let mut args = [0; 6];
        args[(n % 6) as usize] = n as u64;
        assert_eq!(
            run(&filter.program, X86_64, call.id() as u32, args),
            errno_action(1 + (n % 7) as i32)
        );
        args[(n % 6) as usize] = n as u64 + 1;
        assert_eq!(run(&filter.program, X86_64, call.id() as u32, args), ALLOW);
    }
}

/// One system call a test child makes under a filter.
#[derive(Clone, Copy)]
enum Call {
    /// Through the x86_64 `syscall` instruction (x32 numbers too).
    Native(i64, [u64; 6]),
    /// Through `int 0x80`, as an i386 process does: number and first argument.
    I386(u32, u32),
}

/// What a call gave: its result (negative: -errno), or the signal that ended the child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Got {
    Returned(i64),
    Killed(i32),
}

fn native(nr: i64, args: &[u64]) -> Call {
    let mut all = [0; 6];
    all[..args.len()].copy_from_slice(args);
    Call::Native(nr, all)
}

/// Loads `filter` (with no_new_privs) in a forked child that then makes `calls` one by one and
/// reports each result through a pipe; a call that kills the child ends the list.
fn under_filter(filter: &Filter, calls: &[Call]) -> Vec<Got> {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    let (read_end, write_end) = nix::unistd::pipe().unwrap();
    let report = write_end.as_raw_fd();
    // The child allocates nothing: the test runner's other threads may hold the allocator.
    let child = crate::process::spawn(0, || {
        if filter.load(true).is_err() {
            return Ok(125);
        }
        for call in calls {
            let result: i64 = match *call {
                // SAFETY: the tests pass numbers and arguments that change nothing outside
                // the child (pointers are null or to static strings).
                Call::Native(nr, a) => unsafe {
                    let r = libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
                    if r == -1 {
                        -(*libc::__errno_location() as i64)
                    } else {
                        r
                    }
                },
                Call::I386(nr, arg0) => int80(nr, arg0),
            };
            // SAFETY: writes 8 bytes from a local to the pipe.
            unsafe { libc::write(report, &result as *const i64 as *const libc::c_void, 8) };
        }
        Ok(0)
    })
    .unwrap();
    drop(write_end);
    let mut bytes = Vec::new();
    std::fs::File::from(read_end)
        .read_to_end(&mut bytes)
        .unwrap();
    let status = crate::process::wait(child).unwrap();
    assert_ne!(status, 125, "the child could not load the filter");
    let mut got: Vec<Got> = bytes
        .chunks_exact(8)
        .map(|b| Got::Returned(i64::from_ne_bytes(b.try_into().unwrap())))
        .collect();
    if status > 128 {
        got.push(Got::Killed(status - 128));
    } else {
        assert_eq!(status, 0);
    }
    got
}

/// An i386 system call from this x86_64 process (the kernel's IA-32 emulation).
fn int80(nr: u32, arg0: u32) -> i64 {
    let ret: u32;
    // SAFETY: `int 0x80` enters the kernel's i386 entry with eax the number and ebx the first
    // argument (swapped in and out: rbx is reserved to the compiler); the kernel preserves the
    // other registers except r8-r11, declared clobbered.
    unsafe {
        std::arch::asm!(
            "xchg {arg0:e}, ebx",
            "int 0x80",
            "xchg {arg0:e}, ebx",
            arg0 = inout(reg) arg0 => _,
            inlateout("eax") nr => ret,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _,
        );
    }
    ret as i32 as i64
}

const NO_DIR: &[u8] = b"/nonexistent-seccomp-test/dir\0";
const SIGSYS: i32 = libc::SIGSYS;

fn errno(e: i32) -> Got {
    Got::Returned(-(e as i64))
}

/// Base of the kernel tests' profiles: the child must be able to report and exit.
fn allowing_the_child(default: &str, mut rules: Vec<serde_json::Value>) -> Filter {
    rules.push(json!({"names": ["write", "exit_group", "exit"], "action": "SCMP_ACT_ALLOW"}));
    let mut profile = json!({"defaultAction": default, "syscalls": rules});
    if default == "SCMP_ACT_ERRNO" {
        profile["defaultErrnoRet"] = json!(38);
    }
    compile(profile)
}

#[test]
fn loaded_filter_returns_errno_values_and_checks_arguments() {
    let filter = allowing_the_child(
        "SCMP_ACT_ERRNO",
        vec![
            json!({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}),
            json!({"names": ["getpid"], "action": "SCMP_ACT_ALLOW",
                   "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]}),
            json!({"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                   "args": [{"index": 0, "value": 0xffff_ffffu64, "op": "SCMP_CMP_EQ"}]}),
            json!({"names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                   "args": [{"index": 0, "value": libc::CLONE_NEWUSER,
                             "valueTwo": libc::CLONE_NEWUSER, "op": "SCMP_CMP_MASKED_EQ"}]}),
        ],
    );
    let pid = std::process::id() as i64;
    let got = under_filter(
        &filter,
        &[
            native(libc::SYS_mkdir, &[NO_DIR.as_ptr() as u64, 0o755]),
            native(libc::SYS_getpid, &[0]),
            native(libc::SYS_getpid, &[1]),
            native(libc::SYS_getcwd, &[0, 0]),
            native(libc::SYS_personality, &[0xffff_ffff]),
            native(libc::SYS_personality, &[0x0040_0000]),
            native(
                libc::SYS_clone,
                &[(libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::SIGCHLD) as u64],
            ),
            // x32 is not listed: its numbers are a bad architecture, which kills.
            native(0x4000_0000 | libc::SYS_getpid, &[]),
            native(libc::SYS_getpid, &[0]),
        ],
    );
    assert_eq!(got.len(), 8, "{got:?}");
    assert_eq!(got[0], errno(libc::EPERM));
    assert!(
        matches!(got[1], Got::Returned(p) if p > 0 && p != pid),
        "{got:?}"
    );
    assert_eq!(got[2], errno(libc::ENOSYS));
    assert_eq!(got[3], errno(libc::ENOSYS));
    assert!(matches!(got[4], Got::Returned(p) if p >= 0), "{got:?}");
    assert_eq!(got[5], errno(libc::ENOSYS));
    assert_eq!(got[6], errno(libc::EPERM));
    assert_eq!(got[7], Got::Killed(SIGSYS));
}

#[test]
fn loaded_filter_kills_traps_logs_traces_and_notifies() {
    let with = |action: &str| {
        allowing_the_child(
            "SCMP_ACT_ALLOW",
            vec![json!({"names": ["getppid"], "action": action})],
        )
    };
    let getppid = [
        native(libc::SYS_getppid, &[]),
        native(libc::SYS_getpid, &[]),
    ];
    for action in [
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_TRAP",
    ] {
        assert_eq!(
            under_filter(&with(action), &getppid),
            [Got::Killed(SIGSYS)],
            "{action}"
        );
    }
    let parent = std::process::id() as i64;
    assert!(matches!(
        under_filter(&with("SCMP_ACT_LOG"), &getppid)[..],
        [Got::Returned(p), Got::Returned(_)] if p == parent
    ));
    // No tracer: the kernel answers ENOSYS. No listener (closed): likewise.
    assert_eq!(
        under_filter(&with("SCMP_ACT_TRACE"), &getppid)[0],
        errno(libc::ENOSYS)
    );
    let notify = with("SCMP_ACT_NOTIFY");
    assert!(notify.has_listener());
    assert_eq!(under_filter(&notify, &getppid)[0], errno(libc::ENOSYS));
}

#[test]
fn loaded_filter_covers_i386_and_x32_with_their_numbers() {
    let filter = compile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["ioctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 25},
            {"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"},
            {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 97},
        ]
    }));
    let pid = |got: Got| matches!(got, Got::Returned(p) if p > 0);
    let got = under_filter(
        &filter,
        &[
            Call::I386(20, 0),              // getpid
            Call::I386(39, 0),              // mkdir
            Call::I386(54, 0),              // ioctl
            native(0x4000_0000 | 514, &[]), // x32 ioctl
            native(0x4000_0000 | 83, &[]),  // x32 mkdir
            native(0x4000_0000 | 16, &[]),  // x86_64's ioctl number with the x32 bit: none
            native(0x4000_0000 | libc::SYS_getpid, &[]),
            Call::I386(102, 1), // socketcall(SYS_SOCKET, ...)
            Call::I386(102, 2), // socketcall(SYS_BIND, NULL): allowed, the kernel's EFAULT
            Call::I386(64, 0),  // getppid
        ],
    );
    assert!(pid(got[0]), "{got:?}");
    assert_eq!(got[1], errno(libc::EACCES));
    assert_eq!(got[2], errno(libc::ENOTTY));
    assert_eq!(got[3], errno(libc::ENOTTY));
    assert_eq!(got[4], errno(libc::EACCES));
    // Allowed by the filter; the kernel itself answers ENOSYS where x32 is disabled.
    assert!(
        matches!(got[5], Got::Returned(r) if r == -(libc::ENOSYS as i64)),
        "{got:?}"
    );
    assert!(pid(got[6]) || got[6] == errno(libc::ENOSYS), "{got:?}");
    assert_eq!(got[7], errno(libc::EAFNOSUPPORT));
    assert_eq!(got[8], errno(libc::EFAULT));
    assert_eq!(got[9], Got::Killed(SIGSYS));
}

#[test]
fn podman_default_profile_loaded_answers_as_under_crun() {
    let filter = Filter::compile(&podman_default_profile()).unwrap();
    let got = under_filter(
        &filter,
        &[
            native(libc::SYS_getpid, &[]),
            native(libc::SYS_bpf, &[0, 0, 0]),
            native(libc::SYS_io_uring_setup, &[1, 0]),
            native(libc::SYS_add_key, &[0, 0, 0, 0, 0]),
            native(libc::SYS_personality, &[0xffff_ffff]),
            native(libc::SYS_personality, &[0x0040_0000]),
            native(
                libc::SYS_socket,
                &[libc::AF_NETLINK as u64, libc::SOCK_RAW as u64, 9],
            ),
            native(
                libc::SYS_socket,
                &[libc::AF_UNIX as u64, libc::SOCK_STREAM as u64, 0],
            ),
            native(libc::SYS_unshare, &[0]),
            native(libc::SYS_mkdir, &[NO_DIR.as_ptr() as u64, 0o755]),
            Call::I386(20, 0),
            Call::I386(357, 0), // i386 bpf
            native(0x4000_0000 | libc::SYS_getpid, &[]),
        ],
    );
    assert_eq!(got.len(), 13, "{got:?}");
    assert!(matches!(got[0], Got::Returned(p) if p > 0));
    assert_eq!(got[1], errno(libc::EPERM), "bpf without CAP_SYS_ADMIN");
    assert_eq!(got[2], errno(libc::ENOSYS), "io_uring_setup: not listed");
    assert_eq!(got[3], errno(libc::ENOSYS), "add_key: not listed");
    assert!(matches!(got[4], Got::Returned(p) if p >= 0), "{got:?}");
    assert_eq!(
        got[5],
        errno(libc::ENOSYS),
        "personality(ADDR_NO_RANDOMIZE)"
    );
    assert_eq!(
        got[6],
        errno(libc::EINVAL),
        "socket(AF_NETLINK, NETLINK_AUDIT)"
    );
    assert!(matches!(got[7], Got::Returned(fd) if fd >= 0), "{got:?}");
    assert_eq!(got[8], Got::Returned(0));
    assert_eq!(got[9], errno(libc::ENOENT), "mkdir is allowed");
    assert!(matches!(got[10], Got::Returned(p) if p > 0), "{got:?}");
    assert_eq!(got[11], errno(libc::EPERM), "i386 bpf");
    assert!(
        matches!(got[12], Got::Returned(p) if p > 0) || got[12] == errno(libc::ENOSYS),
        "{got:?}"
    );
}

#[test]
fn hand_written_profiles_decided_exactly_as_by_libseccomp() {
    let cond = |index: u32, op: &str, value: u64, value_two: u64| json!({"index": index, "value": value, "valueTwo": value_two, "op": op});
    let ops = [
        "SCMP_CMP_EQ",
        "SCMP_CMP_NE",
        "SCMP_CMP_LT",
        "SCMP_CMP_LE",
        "SCMP_CMP_GT",
        "SCMP_CMP_GE",
        "SCMP_CMP_MASKED_EQ",
    ];
    let names = [
        "getpid", "getppid", "kill", "chdir", "mkdir", "rmdir", "socket",
    ];
    let mut one_op_each: Vec<serde_json::Value> = ops
        .iter()
        .zip(names)
        .enumerate()
        .map(|(i, (op, name))| {
            json!({"names": [name], "action": "SCMP_ACT_ERRNO", "errnoRet": i + 1,
                   "args": [cond(i as u32 % 3, op, 0x1_0000_0005, 0x1_0000_0004)]})
        })
        .collect();
    one_op_each.push(json!({"names": ["getuid", "getgid"], "action": "SCMP_ACT_KILL_PROCESS",
                            "args": [cond(1, "SCMP_CMP_GT", 7, 0), cond(2, "SCMP_CMP_LE", 0xffff_ffff, 0)]}));
    one_op_each.push(json!({"names": ["clone"], "action": "SCMP_ACT_ERRNO",
                            "args": [cond(0, "SCMP_CMP_MASKED_EQ", 0x7E02_0000, 0)]}));
    one_op_each.push(json!({"names": ["ioctl", "socketcall", "ipc"], "action": "SCMP_ACT_TRAP"}));
    let profiles = [
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": one_op_each,
               "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]}),
        json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "syscalls": one_op_each}),
        json!({"defaultAction": "SCMP_ACT_KILL_PROCESS", "syscalls": [
            {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5,
             "args": [cond(0, "SCMP_CMP_EQ", 1, 0)]},
            {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 6},
            {"names": ["chdir"], "action": "SCMP_ACT_ALLOW",
             "args": [cond(0, "SCMP_CMP_EQ", 3, 0), cond(0, "SCMP_CMP_EQ", 4, 0)]},
            {"names": ["kill"], "action": "SCMP_ACT_LOG",
             "args": [cond(0, "SCMP_CMP_NE", 1, 0), cond(1, "SCMP_CMP_NE", 9, 0)]},
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO",
             "args": [cond(0, "SCMP_CMP_EQ", 1, 0)]},
            {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
             "args": [cond(0, "SCMP_CMP_EQ", 1, 0), cond(1, "SCMP_CMP_EQ", 9, 0)]},
            {"names": ["rmdir"], "action": "SCMP_ACT_ALLOW", "args": [cond(1, "SCMP_CMP_EQ", 9, 0)]},
            {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 2,
             "args": [cond(1, "SCMP_CMP_EQ", 9, 0), cond(2, "SCMP_CMP_GT", 3, 0)]},
            {"names": ["mkdir"], "action": "SCMP_ACT_ALLOW", "args": [cond(1, "SCMP_CMP_EQ", 9, 0)]},
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
             "args": [cond(0, "SCMP_CMP_EQ", 1, 0), cond(1, "SCMP_CMP_EQ", 9, 0)]},
        ], "architectures": ["SCMP_ARCH_X86"]}),
    ];
    let multiplexed = json!([
        {"names": ["socket", "msgget", "semop"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
        {"names": ["connect", "shmat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 2,
         "args": [cond(1, "SCMP_CMP_EQ", 5, 0)]},
        {"names": ["bind", "listen", "accept4", "sendmmsg", "shmctl"], "action": "SCMP_ACT_LOG"},
    ]);
    let mut with_socketcall = multiplexed.as_array().unwrap().clone();
    with_socketcall.push(json!({"names": ["socketcall"], "action": "SCMP_ACT_TRAP"}));
    let profiles = profiles.into_iter().chain([
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": multiplexed,
               "architectures": ["SCMP_ARCH_X86"]}),
        json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": with_socketcall,
               "architectures": ["SCMP_ARCH_X86"]}),
    ]);
    for profile in profiles {
        assert_decides_as_libseccomp(&self::profile(profile));
    }
}

#[test]
fn features_list_what_the_compiler_and_this_kernel_support() {
    let features = serde_json::to_value(features()).unwrap();
    assert_eq!(features["enabled"], json!(true));
    assert_eq!(features["actions"].as_array().unwrap().len(), 9);
    assert!(features["operators"]
        .as_array()
        .unwrap()
        .contains(&json!("SCMP_CMP_MASKED_EQ")));
    assert_eq!(
        features["archs"],
        json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
    );
    assert_eq!(features["knownFlags"].as_array().unwrap().len(), 4);
    // Every kernel since 4.17 (Debian 12 has 6.1) takes these two.
    let supported = features["supportedFlags"].as_array().unwrap();
    assert!(supported.contains(&json!("SECCOMP_FILTER_FLAG_LOG")));
    assert!(supported.contains(&json!("SECCOMP_FILTER_FLAG_SPEC_ALLOW")));
}
