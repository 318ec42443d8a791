//! Seccomp: an OCI profile (config.json's `linux.seccomp`) compiled into a classic BPF filter
//! and loaded into the calling process.
//!
//! Why a compiler of our own: the profile must be enforced as crun enforces it, in the static
//! (musl) binaries `make` builds. crun hands the profile to libseccomp, but Debian's
//! libseccomp.a is built against glibc and does not link into a musl binary; the pure-Rust
//! seccompiler gives a filter one action on a match and one otherwise and takes numbers, not
//! names, while podman's default profile needs a default ERRNO(38), ERRNO(1) and EINVAL rules,
//! argument conditions and three x86 ABIs. So this module reads the profile with libseccomp's
//! and crun's semantics and emits the BPF itself (the system call tables come from the
//! `syscalls` crate, see abi.rs):
//!
//! - The filter checks the architecture first. The native ABI is always covered (libseccomp
//!   starts from it) and so is each listed one this kernel can run (on x86_64: x86 and x32;
//!   others cannot reach it and are left out). A call from any other ABI kills the thread,
//!   libseccomp's default for a bad architecture; on x86_64 that includes x32 numbers (bit 30)
//!   when x32 is not listed, so that they cannot slip past rules written for x86_64 numbers.
//! - `defaultAction` applies to every call no rule decides. `defaultErrnoRet` and a rule's
//!   `errnoRet` are only allowed with ERRNO and TRACE; ERRNO without one returns EPERM.
//! - A rule whose action equals the default action is left out, as crun does. For one call,
//!   the first rule without conditions decides it (libseccomp keeps the first such rule and
//!   drops the conditional ones). Of two conditional rules where one's conditions include all
//!   of the other's, the broader one stays (libseccomp prunes the narrower, in either order);
//!   the same conditions with another action are refused (libseccomp's EEXIST, fatal in crun).
//!   The remaining rules are tried in the profile's order, the first whose conditions all hold
//!   decides, and the default action applies when none does. Several conditions on the same
//!   argument make one rule each (ORed), as crun splits them for libseccomp.
//! - Known difference: where two conditional rules with different actions overlap without one
//!   covering the other, libseccomp's answer follows the shape of its decision tree (the rule
//!   testing the later argument tends to win) and ours is the earlier rule's. The profiles
//!   podman and docker ship have no such overlap; the tests compare podman's default profile
//!   with libseccomp's filter call by call and on every combination of its argument values.
//! - Conditions compare the 64-bit argument as two 32-bit halves (only the low half on 32-bit
//!   ABIs, x32 included); MASKED_EQ is `(arg & value) == valueTwo`.
//! - On i386 a rule on a socket or System V IPC call also covers socketcall or ipc with that
//!   call's number as first argument, as libseccomp adds it: the rule's condition on the first
//!   argument gives way to that one, its others stay on the same argument indexes.
//! - A name no table knows is skipped with a warning (crun: "unknown seccomp syscall `x`
//!   ignored"); a name known on some ABI but not another applies where it exists.
//! - `flags`: absent means SECCOMP_FILTER_FLAG_SPEC_ALLOW (crun's default); a kernel that
//!   refuses the flags (EINVAL) gets the filter without them, as crun retries.
//! - SCMP_ACT_NOTIFY loads the filter with a listener and hands its descriptor to the caller
//!   (the runtime sends it to `listenerPath`); it cannot be the default action.
//!
//! podman resolves its profile's `includes`/`excludes` (architectures, capabilities, kernel
//! version) before it writes config.json; the OCI profile has none. The calls are sorted by
//! number and found by a binary search over ranges of numbers with the same outcome, so a
//! call costs about log2(ranges) comparisons (podman's default profile: see the tests).

mod abi;
mod bpf;
mod libseccomp_names;
#[cfg(test)]
mod tests;

use abi::Abi;
use anyhow::{bail, Context, Result};
use bpf::{Assembler, Label, Target, Test};
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use std::collections::{BTreeMap, HashMap};
use std::os::fd::{FromRawFd, OwnedFd};

/// Offsets in struct seccomp_data (linux/seccomp.h): nr, arch, then six 64-bit args.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;
const DATA_ARGS: u32 = 16;

/// A compiled filter, ready to load.
pub struct Filter {
    program: Vec<libc::sock_filter>,
    flags: libc::c_ulong,
    notify: bool,
    warnings: Vec<String>,
}

/// One condition on an argument, with the profile's operands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Condition {
    index: u32,
    op: LinuxSeccompOperator,
    value: u64,
    value_two: u64,
    /// Only the low 32 bits are compared (a 32-bit ABI's rule).
    low_half_only: bool,
}

/// A rule for one call: its SECCOMP_RET_* action when all its conditions hold.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    action: u32,
    conditions: Vec<Condition>,
}

/// How one call is decided.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Decision {
    Always(u32),
    /// The first rule that holds; the default action when none does.
    FirstOf(Vec<Rule>),
}

/// The calls of one audit architecture (x86_64 and x32 share one) and how each is decided.
#[derive(Clone, Debug)]
struct ArchRules {
    audit_arch: u32,
    calls: BTreeMap<u32, Decision>,
    /// Numbers from this one on (but -1) belong to an ABI the filter does not cover (x32 on
    /// x86_64).
    bad_from: Option<u32>,
}

impl Filter {
    /// Compiles `profile`. Fails on what crun refuses (an unknown action or operator, an errno
    /// value with an action that has none, an argument index over 5) and on what this compiler
    /// does not support; names no table knows only produce [`Filter::warnings`].
    pub fn compile(profile: &LinuxSeccomp) -> Result<Filter> {
        let default_action = action_value(
            profile.default_action(),
            profile.default_errno_ret(),
            "the default action",
        )?;
        if profile.default_action() == LinuxSeccompAction::ScmpActNotify {
            bail!("seccomp: SCMP_ACT_NOTIFY cannot be the default action");
        }

        let mut abis: Vec<&'static Abi> = vec![&abi::NATIVE];
        for arch in profile.architectures().iter().flatten() {
            if let Some(abi) = abi::for_arch(*arch) {
                if !abis.iter().any(|a| a.name == abi.name) {
                    abis.push(abi);
                }
            }
        }

        let mut warnings = Vec::new();
        let mut notify = false;
        let mut arches: Vec<ArchRules> = Vec::new();
        for abi in &abis {
            if !arches.iter().any(|a| a.audit_arch == abi.audit_arch) {
                arches.push(ArchRules {
                    audit_arch: abi.audit_arch,
                    calls: BTreeMap::new(),
                    bad_from: None,
                });
            }
        }
        arches[0].bad_from = abi::native_rejects_above(&abis);

        for (i, syscall) in profile.syscalls().iter().flatten().enumerate() {
            let what = format!("rule {} ({})", i + 1, syscall.names().join(", "));
            let action = action_value(syscall.action(), syscall.errno_ret(), &what)?;
            let mut conditions = Vec::new();
            for arg in syscall.args().iter().flatten() {
                if arg.index() >= 6 {
                    bail!("seccomp: {what}: argument index {} is over 5", arg.index());
                }
                conditions.push(Condition {
                    index: arg.index() as u32,
                    op: arg.op(),
                    value: arg.value(),
                    value_two: arg.value_two().unwrap_or(0),
                    low_half_only: false,
                });
            }
            if action == default_action {
                continue;
            }
            notify |= syscall.action() == LinuxSeccompAction::ScmpActNotify;
            let rules = split_same_argument(action, conditions);
            for name in syscall.names() {
                if !abi::is_known(name) {
                    warnings.push(format!("unknown seccomp syscall `{name}` ignored"));
                    continue;
                }
                for abi in &abis {
                    let arch = arches
                        .iter_mut()
                        .find(|a| a.audit_arch == abi.audit_arch)
                        .context("internal error: seccomp architecture without rules")?;
                    let mut targets: Vec<(u32, Vec<Rule>)> = Vec::new();
                    if let Some(number) = (abi.number)(name) {
                        targets.push((number, rules.clone()));
                    }
                    if let Some((multiplexer, call)) = (abi.multiplexed)(name) {
                        let by_first_argument = Condition {
                            index: 0,
                            op: LinuxSeccompOperator::ScmpCmpEq,
                            value: call.into(),
                            value_two: 0,
                            low_half_only: false,
                        };
                        let through_multiplexer = rules.iter().map(|rule| {
                            let mut conditions = vec![by_first_argument];
                            conditions.extend(rule.conditions.iter().filter(|c| c.index != 0));
                            Rule { action, conditions }
                        });
                        targets.push((multiplexer, through_multiplexer.collect()));
                    }
                    for (number, rule) in targets
                        .iter()
                        .flat_map(|(n, rules)| rules.iter().map(move |r| (*n, r)))
                    {
                        let mut rule = rule.clone();
                        for condition in &mut rule.conditions {
                            condition.low_half_only = abi.word_args;
                        }
                        if !add_rule(&mut arch.calls, number, &rule) {
                            bail!(
                                "seccomp: {what}: `{name}` has another rule with the same \
                                 conditions and a different action"
                            );
                        }
                    }
                }
            }
        }

        let flags = match profile.flags() {
            None => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            Some(flags) => flags.iter().fold(0, |all, flag| {
                all | match flag {
                    LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
                    // One thread only: TSYNC has nothing to synchronise, and the kernel
                    // refuses it beside a listener.
                    LinuxSeccompFilterFlag::SeccompFilterFlagTsync => 0,
                    LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                        libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
                    }
                    LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                        libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
                    }
                }
            }),
        };

        Ok(Filter {
            program: generate(&arches, default_action)?,
            flags,
            notify,
            warnings,
        })
    }

    /// What the profile held that was skipped, one message each (for the caller to log).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The number of BPF instructions.
    pub fn len(&self) -> usize {
        self.program.len()
    }

    pub fn is_empty(&self) -> bool {
        self.program.is_empty()
    }

    /// Whether some rule notifies a listener, so that [`Filter::load`] returns its descriptor.
    pub fn has_listener(&self) -> bool {
        self.notify
    }

    /// Loads the filter into the calling thread, first setting no_new_privs if asked (without
    /// it the kernel demands CAP_SYS_ADMIN). Returns the listener's descriptor when some rule
    /// notifies. Allocates nothing on success, so a child may call it right after fork.
    pub fn load(&self, set_no_new_privs: bool) -> Result<Option<OwnedFd>> {
        if set_no_new_privs {
            // SAFETY: prctl with integer arguments only changes this thread's flag.
            if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
                return Err(std::io::Error::last_os_error())
                    .context("seccomp: setting no_new_privs");
            }
        }
        let program = libc::sock_fprog {
            len: self.program.len() as u16,
            filter: self.program.as_ptr() as *mut libc::sock_filter,
        };
        let mut flags = self.flags;
        if self.notify {
            flags |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
        }
        let install = |flags: libc::c_ulong| {
            // SAFETY: `program` points at self.program, alive and unchanged for the call; the
            // kernel copies the instructions.
            unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    flags,
                    &program as *const libc::sock_fprog,
                )
            }
        };
        let mut ret = install(flags);
        if ret < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
            // A kernel older than one of the flags: crun loads the filter without them.
            if !self.notify && flags != 0 {
                ret = install(0);
            }
        }
        if ret < 0 {
            let err = std::io::Error::last_os_error();
            let hint = if err.raw_os_error() == Some(libc::EACCES) {
                " (without no_new_privs the process needs CAP_SYS_ADMIN)"
            } else {
                ""
            };
            return Err(err).context(format!("seccomp: loading the filter{hint}"));
        }
        if self.notify {
            // SAFETY: with SECCOMP_FILTER_FLAG_NEW_LISTENER the kernel returned a new
            // descriptor that nothing else owns.
            Ok(Some(unsafe { OwnedFd::from_raw_fd(ret as i32) }))
        } else {
            Ok(None)
        }
    }
}

/// The filter flags of the runtime spec, with their kernel values.
const FLAGS: &[(&str, libc::c_ulong)] = &[
    ("SECCOMP_FILTER_FLAG_TSYNC", libc::SECCOMP_FILTER_FLAG_TSYNC),
    ("SECCOMP_FILTER_FLAG_LOG", libc::SECCOMP_FILTER_FLAG_LOG),
    (
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
    ),
    (
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
        libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
    ),
];

/// What this seccomp support handles, for the runtime's `features` document: every action
/// and operator of the spec, the architectures a filter covers on this machine (others are
/// accepted and left out, see above), the flags known and those this kernel accepts.
pub fn features() -> oci_spec::runtime::Seccomp {
    use LinuxSeccompAction::*;
    let mut features = oci_spec::runtime::Seccomp::default();
    features.set_enabled(Some(true));
    features.set_actions(Some(vec![
        ScmpActKill,
        ScmpActKillThread,
        ScmpActKillProcess,
        ScmpActTrap,
        ScmpActErrno,
        ScmpActNotify,
        ScmpActTrace,
        ScmpActLog,
        ScmpActAllow,
    ]));
    let operators = [
        "SCMP_CMP_NE",
        "SCMP_CMP_LT",
        "SCMP_CMP_LE",
        "SCMP_CMP_EQ",
        "SCMP_CMP_GE",
        "SCMP_CMP_GT",
        "SCMP_CMP_MASKED_EQ",
    ];
    features.set_operators(Some(operators.iter().map(|o| o.to_string()).collect()));
    features.set_archs(Some(abi::ARCHS.to_vec()));
    features.set_known_flags(Some(FLAGS.iter().map(|(n, _)| n.to_string()).collect()));
    let supported = FLAGS
        .iter()
        .filter(|(_, flag)| {
            // With no program the kernel checks the flags first: EINVAL for one it does not
            // know, then EFAULT for the missing program. Nothing is installed either way.
            // SAFETY: a null program pointer is never dereferenced by the kernel here.
            let ret = unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    *flag,
                    std::ptr::null::<libc::sock_fprog>(),
                )
            };
            ret < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT)
        })
        .map(|(name, _)| name.to_string())
        .collect();
    features.set_supported_flags(Some(supported));
    features
}

/// The SECCOMP_RET_* value of an action, as crun builds it for libseccomp.
fn action_value(action: LinuxSeccompAction, errno_ret: Option<u32>, what: &str) -> Result<u32> {
    use LinuxSeccompAction::*;
    let data = match (action, errno_ret) {
        (ScmpActErrno | ScmpActTrace, errno) => errno.unwrap_or(libc::EPERM as u32),
        (_, None) => 0,
        (_, Some(_)) => bail!(
            "seccomp: {what}: an errno value is only allowed with SCMP_ACT_ERRNO or SCMP_ACT_TRACE"
        ),
    } & libc::SECCOMP_RET_DATA;
    Ok(match action {
        ScmpActKill | ScmpActKillThread => libc::SECCOMP_RET_KILL_THREAD,
        ScmpActKillProcess => libc::SECCOMP_RET_KILL_PROCESS,
        ScmpActTrap => libc::SECCOMP_RET_TRAP,
        ScmpActErrno => libc::SECCOMP_RET_ERRNO | data,
        ScmpActNotify => libc::SECCOMP_RET_USER_NOTIF,
        ScmpActTrace => libc::SECCOMP_RET_TRACE | data,
        ScmpActLog => libc::SECCOMP_RET_LOG,
        ScmpActAllow => libc::SECCOMP_RET_ALLOW,
    })
}

/// One rule, or, when two conditions test the same argument, one rule per condition: crun
/// adds them to libseccomp that way, which ORs them.
fn split_same_argument(action: u32, conditions: Vec<Condition>) -> Vec<Rule> {
    let repeated = conditions
        .iter()
        .enumerate()
        .any(|(i, c)| conditions[..i].iter().any(|d| d.index == c.index));
    if repeated {
        conditions
            .into_iter()
            .map(|c| Rule {
                action,
                conditions: vec![c],
            })
            .collect()
    } else {
        vec![Rule { action, conditions }]
    }
}

/// Adds a rule for call `number` the way libseccomp merges them: an unconditional rule
/// replaces conditional ones, and once a call has one, later rules change nothing; a rule whose
/// conditions include all of another's (it covers fewer calls) gives way to the other, whatever
/// their order; two rules with the same conditions and different actions are refused (crun
/// fails on libseccomp's EEXIST). Returns false for that conflict.
fn add_rule(calls: &mut BTreeMap<u32, Decision>, number: u32, rule: &Rule) -> bool {
    let decision = calls
        .entry(number)
        .or_insert_with(|| Decision::FirstOf(Vec::new()));
    let covers = |broad: &Rule, narrow: &Rule| {
        broad
            .conditions
            .iter()
            .all(|c| narrow.conditions.contains(c))
    };
    match decision {
        Decision::Always(_) => {}
        Decision::FirstOf(_) if rule.conditions.is_empty() => {
            *decision = Decision::Always(rule.action)
        }
        Decision::FirstOf(rules) => {
            if let Some(same) = rules.iter().find(|r| covers(r, rule) && covers(rule, r)) {
                return same.action == rule.action;
            }
            if rules.iter().any(|r| covers(r, rule)) {
                return true;
            }
            rules.retain(|r| !covers(rule, r));
            rules.push(rule.clone());
        }
    }
    true
}

/// Where the code for a call, or a range of calls, goes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Outcome {
    Return(u32),
    Rules(u32),
    BadArch,
}

fn generate(arches: &[ArchRules], default_action: u32) -> Result<Vec<libc::sock_filter>> {
    let mut asm = Assembler::default();
    let bad_arch = asm.label();
    asm.load(DATA_ARCH);
    for arch in arches {
        let next_arch = asm.label();
        asm.jump(
            Test::Eq,
            arch.audit_arch,
            Target::Next,
            Target::To(next_arch),
        );
        asm.load(DATA_NR);
        // Each architecture's returns come after its code, so its jumps stay short.
        let mut returns: HashMap<u32, Label> = HashMap::new();
        let mut handlers: Vec<(u32, Label)> = Vec::new();
        let mut label_of = |asm: &mut Assembler, outcome: Outcome| match outcome {
            Outcome::Return(action) => *returns.entry(action).or_insert_with(|| asm.label()),
            Outcome::Rules(number) => {
                let label = asm.label();
                handlers.push((number, label));
                label
            }
            Outcome::BadArch => bad_arch,
        };

        let ranges = ranges(arch, default_action);
        let starts: Vec<(u32, Label)> = ranges
            .iter()
            .map(|(start, outcome)| (*start, label_of(&mut asm, *outcome)))
            .collect();
        search(&mut asm, &starts);

        for (number, label) in handlers {
            asm.bind(label);
            let Some(Decision::FirstOf(rules)) = arch.calls.get(&number) else {
                bail!("internal error: seccomp rules for call {number} missing");
            };
            for rule in rules {
                let next_rule = asm.label();
                for condition in &rule.conditions {
                    compare(&mut asm, condition, next_rule);
                }
                let to = *returns.entry(rule.action).or_insert_with(|| asm.label());
                asm.goto(to);
                asm.bind(next_rule);
            }
            let to = *returns.entry(default_action).or_insert_with(|| asm.label());
            asm.goto(to);
        }
        let mut returns: Vec<(u32, Label)> = returns.into_iter().collect();
        returns.sort_by_key(|(action, _)| *action);
        for (action, label) in returns {
            asm.bind(label);
            asm.ret(action);
        }
        asm.bind(next_arch);
    }
    asm.bind(bad_arch);
    asm.ret(libc::SECCOMP_RET_KILL_THREAD);
    asm.finish()
}

/// The call numbers cut into ranges with one outcome each, as (first number, outcome), from 0
/// up: a range lasts until the next one starts.
fn ranges(arch: &ArchRules, default_action: u32) -> Vec<(u32, Outcome)> {
    let mut ranges: Vec<(u32, Outcome)> = Vec::new();
    let mut push = |start: u32, outcome: Outcome| {
        if ranges.last().map(|(_, o)| *o) != Some(outcome) {
            ranges.push((start, outcome));
        }
    };
    let bad_from = arch.bad_from.unwrap_or(u32::MAX);
    let mut next: u64 = 0;
    for (number, decision) in arch.calls.range(..bad_from) {
        if u64::from(*number) > next {
            push(next as u32, Outcome::Return(default_action));
        }
        let outcome = match decision {
            Decision::Always(action) => Outcome::Return(*action),
            Decision::FirstOf(rules) if rules.is_empty() => Outcome::Return(default_action),
            Decision::FirstOf(_) => Outcome::Rules(*number),
        };
        push(*number, outcome);
        next = u64::from(*number) + 1;
    }
    if next < u64::from(bad_from) {
        push(next as u32, Outcome::Return(default_action));
    }
    if arch.bad_from.is_some() {
        push(bad_from, Outcome::BadArch);
        // -1, a call a tracer skipped, is left to the rules, as libseccomp does.
        push(u32::MAX, Outcome::Return(default_action));
    }
    ranges
}

/// A binary search over range starts, the call number in the accumulator: each step asks
/// `nr >= start` of the middle range; a side with one range left jumps straight to its code.
fn search(asm: &mut Assembler, starts: &[(u32, Label)]) {
    if let [(_, only)] = starts {
        asm.goto(*only);
        return;
    }
    let (low, high) = starts.split_at(starts.len() / 2);
    let high_label = match high {
        [(_, only)] => *only,
        _ => asm.label(),
    };
    let on_false = match low {
        [(_, only)] => Target::To(*only),
        _ => Target::Next,
    };
    asm.jump(Test::Ge, high[0].0, Target::To(high_label), on_false);
    if low.len() > 1 {
        search(asm, low);
    }
    if high.len() > 1 {
        asm.bind(high_label);
        search(asm, high);
    }
}

/// Code that falls through when `condition` holds and jumps to `fail` when it does not. On
/// 64-bit arguments the high halves decide unless they are equal; then the low halves do.
fn compare(asm: &mut Assembler, condition: &Condition, fail: Label) {
    use LinuxSeccompOperator::*;
    let arg = DATA_ARGS + 8 * condition.index;
    let (low_offset, high_offset) = if cfg!(target_endian = "little") {
        (arg, arg + 4)
    } else {
        (arg + 4, arg)
    };
    let (value_high, value_low) = ((condition.value >> 32) as u32, condition.value as u32);
    let (fail, next) = (Target::To(fail), Target::Next);
    let holds = asm.label();
    match condition.op {
        ScmpCmpMaskedEq => {
            let datum = condition.value_two;
            if !condition.low_half_only {
                asm.load(high_offset);
                asm.and(value_high);
                asm.jump(Test::Eq, (datum >> 32) as u32, next, fail);
            }
            asm.load(low_offset);
            asm.and(value_low);
            asm.jump(Test::Eq, datum as u32, next, fail);
        }
        ScmpCmpEq => {
            if !condition.low_half_only {
                asm.load(high_offset);
                asm.jump(Test::Eq, value_high, next, fail);
            }
            asm.load(low_offset);
            asm.jump(Test::Eq, value_low, next, fail);
        }
        ScmpCmpNe => {
            if !condition.low_half_only {
                asm.load(high_offset);
                asm.jump(Test::Eq, value_high, next, Target::To(holds));
            }
            asm.load(low_offset);
            asm.jump(Test::Eq, value_low, fail, next);
        }
        ScmpCmpGt | ScmpCmpGe => {
            if !condition.low_half_only {
                asm.load(high_offset);
                asm.jump(Test::Gt, value_high, Target::To(holds), next);
                asm.jump(Test::Eq, value_high, next, fail);
            }
            asm.load(low_offset);
            let test = if condition.op == ScmpCmpGt {
                Test::Gt
            } else {
                Test::Ge
            };
            asm.jump(test, value_low, next, fail);
        }
        ScmpCmpLt | ScmpCmpLe => {
            if !condition.low_half_only {
                asm.load(high_offset);
                asm.jump(Test::Gt, value_high, fail, next);
                asm.jump(Test::Eq, value_high, next, Target::To(holds));
            }
            asm.load(low_offset);
            // below the value: not at or above it (LT), not above it (LE)
            let test = if condition.op == ScmpCmpLt {
                Test::Ge
            } else {
                Test::Gt
            };
            asm.jump(test, value_low, fail, next);
        }
    }
    asm.bind(holds);
}
