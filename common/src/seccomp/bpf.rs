//! A small assembler for classic BPF, as seccomp runs it: forward jumps to labels, with the
//! 8-bit conditional jump offsets widened through `ja` trampolines where a target lies further
//! than 255 instructions ahead.

use anyhow::{bail, Result};
use libc::sock_filter;

/// The instruction classes and fields seccomp filters use (linux/bpf_common.h).
const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const ALU_AND_K: u16 = (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16;
const JMP_JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

/// A conditional jump's comparison of the accumulator with a constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Test {
    Eq,
    Gt,
    Ge,
}

impl Test {
    fn code(self) -> u16 {
        let op = match self {
            Test::Eq => libc::BPF_JEQ,
            Test::Gt => libc::BPF_JGT,
            Test::Ge => libc::BPF_JGE,
        };
        (libc::BPF_JMP | op | libc::BPF_K) as u16
    }
}

/// A place in the program, bound once, reached only from before it (BPF jumps only forward).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Label(usize);

/// Where a conditional jump goes on one of its outcomes.
#[derive(Clone, Copy, Debug)]
pub(super) enum Target {
    /// The instruction after the jump.
    Next,
    To(Label),
}

enum Op {
    Bind(Label),
    Plain(u16, u32),
    Jump {
        test: Test,
        k: u32,
        on_true: Target,
        on_false: Target,
    },
    Goto(Label),
}

#[derive(Default)]
pub(super) struct Assembler {
    ops: Vec<Op>,
    labels: usize,
}

impl Assembler {
    pub fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }

    pub fn bind(&mut self, label: Label) {
        self.ops.push(Op::Bind(label));
    }

    /// Loads the 32-bit word at `offset` of struct seccomp_data into the accumulator.
    pub fn load(&mut self, offset: u32) {
        self.ops.push(Op::Plain(LD_W_ABS, offset));
    }

    pub fn and(&mut self, mask: u32) {
        self.ops.push(Op::Plain(ALU_AND_K, mask));
    }

    /// Ends the filter with the SECCOMP_RET_* value `action`.
    pub fn ret(&mut self, action: u32) {
        self.ops.push(Op::Plain(RET_K, action));
    }

    pub fn jump(&mut self, test: Test, k: u32, on_true: Target, on_false: Target) {
        self.ops.push(Op::Jump {
            test,
            k,
            on_true,
            on_false,
        });
    }

    pub fn goto(&mut self, label: Label) {
        self.ops.push(Op::Goto(label));
    }

    /// Lays the program out: each conditional jump whose target is too far gets a trampoline
    /// (`ja`, 32-bit offset) right after it. Adding one moves the code after it, which can put
    /// other targets out of reach, so the layout is repeated until nothing changes; a jump only
    /// ever gains trampolines, so this ends.
    pub fn finish(self) -> Result<Vec<sock_filter>> {
        let count = self.ops.len();
        let mut far = vec![[false; 2]; count];
        let (position, label_at) = loop {
            let (position, label_at) = self.layout(&far)?;
            let mut changed = false;
            for (i, op) in self.ops.iter().enumerate() {
                if let Op::Jump {
                    on_true, on_false, ..
                } = op
                {
                    for (side, target) in [on_true, on_false].into_iter().enumerate() {
                        if far[i][side] {
                            continue;
                        }
                        if let Target::To(label) = target {
                            if label_at[label.0] - position[i] - 1 > 255 {
                                far[i][side] = true;
                                changed = true;
                            }
                        }
                    }
                }
            }
            if !changed {
                break (position, label_at);
            }
        };

        let mut program = Vec::with_capacity(count);
        for (i, op) in self.ops.iter().enumerate() {
            let here = position[i];
            match op {
                Op::Bind(_) => {}
                Op::Plain(code, k) => program.push(insn(*code, 0, 0, *k)),
                Op::Goto(label) => {
                    program.push(insn(JMP_JA, 0, 0, (label_at[label.0] - here - 1) as u32))
                }
                Op::Jump {
                    test,
                    k,
                    on_true,
                    on_false,
                } => {
                    let trampolines = far[i].iter().filter(|f| **f).count();
                    let mut pending = Vec::new();
                    let mut offset = |side: usize, target: &Target| -> u8 {
                        match target {
                            Target::Next => trampolines as u8,
                            Target::To(label) if far[i][side] => {
                                pending.push(*label);
                                (pending.len() - 1) as u8
                            }
                            Target::To(label) => (label_at[label.0] - here - 1) as u8,
                        }
                    };
                    let jt = offset(0, on_true);
                    let jf = offset(1, on_false);
                    program.push(insn(test.code(), jt, jf, *k));
                    for (n, label) in pending.into_iter().enumerate() {
                        let at = here + 1 + n;
                        program.push(insn(JMP_JA, 0, 0, (label_at[label.0] - at - 1) as u32));
                    }
                }
            }
        }
        if program.len() > libc::BPF_MAXINSNS as usize {
            bail!(
                "the seccomp filter needs {} instructions, more than the kernel's limit of {}",
                program.len(),
                libc::BPF_MAXINSNS
            );
        }
        Ok(program)
    }

    /// The position of each op and of each label, given which jumps have trampolines.
    fn layout(&self, far: &[[bool; 2]]) -> Result<(Vec<usize>, Vec<usize>)> {
        let mut position = Vec::with_capacity(self.ops.len());
        let mut label_at = vec![usize::MAX; self.labels];
        let mut here = 0;
        for (i, op) in self.ops.iter().enumerate() {
            position.push(here);
            here += match op {
                Op::Bind(label) => {
                    label_at[label.0] = here;
                    0
                }
                Op::Plain(..) | Op::Goto(_) => 1,
                Op::Jump { .. } => 1 + far[i].iter().filter(|f| **f).count(),
            };
        }
        // Every target must be bound after the jump to it: BPF cannot jump backwards.
        for (i, op) in self.ops.iter().enumerate() {
            let targets = match op {
                Op::Goto(label) => vec![*label],
                Op::Jump {
                    on_true, on_false, ..
                } => [on_true, on_false]
                    .into_iter()
                    .filter_map(|t| match t {
                        Target::To(label) => Some(*label),
                        Target::Next => None,
                    })
                    .collect(),
                _ => continue,
            };
            for label in targets {
                let at = label_at[label.0];
                if at == usize::MAX || at <= position[i] {
                    bail!("internal error: seccomp filter jump {i} to an unbound or earlier label");
                }
            }
        }
        Ok((position, label_at))
    }
}

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}
