//! The Mesos masters' procedures (the operational guide's grow, shrink and replace), derived
//! afresh from what is observed at every call so that an operator restart resumes exactly.
//!
//! The replicated log's quorum is a static flag, so the safety rule is arithmetic: the masters
//! that could run (every unfenced member, and every pod that still exists) never exceed
//! 2q-1 for the smallest `--quorum` any pod runs with. Hence quorum is raised on the existing
//! masters before new ones start, and masters are fenced before the quorum is lowered.

use super::decision::BlockReason;
use super::step::{DataQuorum, RoleView, Step, healthy};
use super::types::{Health, MasterFlags, MastersTarget, Role};

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
    if view.recovering() && n < hi {
        // An acknowledged recovery: the survivors can never meet the quorum they run with.
        // Restart them as an ensemble of their own (n <= 2q-1 with q = floor(n/2)+1), each
        // recovering its log from the others; growing afterwards follows the usual rules.
        if let Some(step) = view.recover(&MasterFlags { quorum: n / 2 + 1 }) {
            return step;
        }
    }
    let phase = phase_quorum(lo, hi, n, want_n, want_q);
    let flags = MasterFlags { quorum: phase };
    // A pod gone mid-restart (the controller deletes, then recreates on a later pass) comes
    // back with the quorum of the current phase, so a roll never undoes its own step.
    // A committed entry is on `--quorum` of the (at most 2q-1) replicas: while `--quorum`
    // VOTING replicas keep their log, one of them has it. Without any pod the quorum is not
    // known: the members with a volume get their pods back first (at the smallest quorum the
    // live members allow, n <= 2q-1), then it is judged.
    let steady = MasterFlags {
        quorum: if quorums.is_empty() { n / 2 + 1 } else { lo },
    };
    let data = DataQuorum {
        size: if quorums.is_empty() {
            steady.quorum
        } else {
            hi
        } as usize,
        recovered_only: true,
        steady: &steady,
    };
    if let Some(step) = view.repair(&flags, data) {
        return step;
    }
    if let Some(step) = unreachable_quorum(view, lo) {
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
        if phase == hi {
            return start_roll(view, &flags);
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

/// An empty replica catches up only when as many VOTING replicas as its own `--quorum`
/// answer. A member serving without having recovered, whose quorum exceeds the healthy rest
/// (a new member whose pod was lost and came back at a raised quorum), can never catch up;
/// it holds no data, so it is fenced and replaced at the lower quorum `lo` others run with.
/// (Without a lower quorum in use, a replacement could not catch up either: quorum is lost.)
fn unreachable_quorum(view: &RoleView<'_, MasterFlags>, lo: u32) -> Option<Step<MasterFlags>> {
    let live = view.live();
    let healthy = live.iter().filter(|m| healthy(m)).count();
    live.iter().find_map(|m| {
        let pod = m.pod.as_ref()?;
        let empty = matches!(
            pod.health,
            Health::Serving {
                recovered: false,
                ..
            }
        );
        let q = pod.config.quorum;
        let stuck = empty && healthy + 1 == live.len() && healthy < q as usize && lo < q;
        (stuck && healthy > 0).then(|| Step::Remove {
            name: m.name.clone(),
        })
    })
}

/// Each restart of a quorum raise waits until every member is healthy: a member still
/// catching up (perhaps with an empty log) must not be restarted into a quorum it cannot
/// reach, so members that are down are not taken first here.
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
