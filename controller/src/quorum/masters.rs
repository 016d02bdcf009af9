//! The Mesos masters' procedures (the operational guide's grow, shrink and replace), derived
//! afresh from what is observed at every call so that an operator restart resumes exactly.
//!
//! The replicated log's quorum is a static flag, so the safety rule is arithmetic: the masters
//! that could run (every unfenced member, and every pod that still exists) never exceed
//! 2q-1 for the smallest `--quorum` any pod runs with. Hence quorum is raised on the existing
//! masters before new ones start, and masters are fenced before the quorum is lowered.

use super::decision::BlockReason;
use super::step::{RoleView, Step};
use super::types::{MasterFlags, MastersTarget, Role};

pub(crate) fn step(view: &RoleView<'_, MasterFlags>, target: &MastersTarget) -> Step<MasterFlags> {
    let (want_n, want_q) = (target.replicas, target.effective_quorum());
    if let Some(step) = view.finish_fencing() {
        return step;
    }
    let live = view.live();
    if live.is_empty() {
        // Bootstrap straight at the target quorum: the log initialises only once 2q-1 empty
        // replicas are up, so start that many and fence down to an even target afterwards.
        if view.all_data_lost() && !target.acknowledge_log_wipe {
            return Step::Blocked(BlockReason::AllDataLost { role: Role::Master });
        }
        let (name, ordinal) = view.fresh(0);
        return Step::Create {
            name,
            ordinal,
            config: MasterFlags { quorum: want_q },
        };
    }
    let n = u32::try_from(live.len()).unwrap_or(u32::MAX);
    let quorums: Vec<u32> = live
        .iter()
        .filter_map(|m| m.pod.as_ref())
        .map(|p| p.config.quorum.max(1))
        .collect();
    let (lo, hi) = match (quorums.iter().min(), quorums.iter().max()) {
        (Some(&lo), Some(&hi)) => (lo, hi),
        // No pod at all: restart at the quorum nearest the target that keeps n <= 2q-1.
        _ => {
            let q = want_q.clamp(n / 2 + 1, n.max(1));
            (q, q)
        }
    };
    let phase = phase_quorum(lo, hi, n, want_n, want_q);
    let flags = MasterFlags { quorum: phase };
    // A member that may hold an empty log must not start with more than the quorum the
    // others already run with, or it could never gather enough VOTING replicas to catch up.
    if let Some(step) = view.repair(&MasterFlags { quorum: lo }) {
        return step;
    }
    let bootstrap_size = want_n.max(2 * want_q - 1);
    if lo == hi && view.uninitialised() && n < (2 * lo - 1).min(bootstrap_size) {
        // An uninitialised log needs all 2q-1 replicas up: add them without waiting. (A wholly
        // crashed ensemble looks the same; the extra member is safe and removed afterwards.)
        let (name, ordinal) = view.fresh(0);
        return Step::Create {
            name,
            ordinal,
            config: MasterFlags { quorum: lo },
        };
    }
    if lo != hi {
        // Mid-roll: finish it, first adding a member if the raised quorum could not be met.
        if phase == hi && n < hi && n < 2 * lo - 1 {
            return view.grow(MasterFlags { quorum: lo });
        }
        return view.roll(&flags).unwrap_or_else(|| view.settle());
    }
    let q = lo;
    if want_q > q {
        if q == 1 {
            // Leaving a single master: its log cannot seed new replicas at quorum 2. Fence it
            // and bootstrap a fresh log (the guide's "wipe and restart").
            if !target.acknowledge_log_wipe {
                return Step::Blocked(BlockReason::LogWipeNotAcknowledged {
                    from: n,
                    to: want_n,
                });
            }
            return view.shrink(&flags, 0);
        }
        if n < want_n.min(2 * q - 1) || view.flaws.create_before_raise && n < want_n {
            return view.grow(MasterFlags { quorum: q });
        }
        return start_roll(view, &flags);
    }
    if want_q < q && n > 2 * q - 3 {
        return view.shrink(&flags, q as usize);
    }
    if want_q < q {
        // A lower quorum only makes catching up easier, so down members may go first.
        return view.roll(&flags).unwrap_or_else(|| view.settle());
    }
    if want_q == q && n < want_n {
        return view.grow(flags);
    }
    if want_q == q && n > want_n {
        return view.shrink(&flags, q as usize);
    }
    view.roll(&flags).unwrap_or_else(|| view.settle())
}

/// A quorum change starts only once every member is healthy: a member still catching up at
/// the old quorum must not be restarted into one it cannot reach.
fn start_roll(view: &RoleView<'_, MasterFlags>, flags: &MasterFlags) -> Step<MasterFlags> {
    match view
        .first_unhealthy(None)
        .filter(|_| !view.flaws.skip_catch_up)
    {
        Some(wait) => Step::Wait(wait),
        None => view.roll(flags).unwrap_or_else(|| view.settle()),
    }
}

/// The quorum the current phase moves every pod to (and new or repaired pods start with).
fn phase_quorum(lo: u32, hi: u32, n: u32, want_n: u32, want_q: u32) -> u32 {
    if lo != hi {
        return if want_q >= hi { hi } else { lo };
    }
    let q = lo;
    if want_q > q && q > 1 && n >= want_n.min(2 * q - 1) {
        q + 1
    } else if want_q < q && n + 3 <= 2 * q {
        q - 1
    } else {
        q
    }
}
