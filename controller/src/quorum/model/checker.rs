//! A generic breadth-first model checker with counterexample traces.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// A transition system with its properties.
pub(crate) trait World {
    type State: Clone + Eq + Hash + Debug;
    type Label: Clone + Debug;
    fn initial(&self) -> Vec<Self::State>;
    /// Every successor, labelled; `Err` when the transition itself breaks a property.
    fn successors(
        &self,
        s: &Self::State,
        out: &mut Vec<(Self::Label, Self::State)>,
    ) -> Result<(), String>;
    /// One line per state for traces.
    fn describe(&self, s: &Self::State) -> String;
    /// A property of the state alone.
    fn check_state(&self, s: &Self::State) -> Result<(), String>;
    /// Whether enough survives in `s` that the target must still be reachable once faults stop.
    fn alive(&self, s: &Self::State) -> bool;
    /// The deterministic fault-free next step (`None` once the goal is reached), or why the
    /// system is stuck.
    fn fault_free(&self, s: &Self::State) -> Result<Option<Step<Self>>, String>;
}

/// A labelled transition.
pub(crate) type Step<W> = (<W as World>::Label, <W as World>::State);

#[derive(Debug)]
pub(crate) struct Outcome {
    pub states: usize,
    pub transitions: usize,
    pub elapsed: Duration,
    /// The first violation found, with the trace leading to it.
    pub violation: Option<String>,
}

const FAULT_FREE_LIMIT: usize = 400;
/// A runaway state space (an identity minted forever, say) fails instead of eating memory.
const STATE_LIMIT: usize = 4_000_000;

pub(crate) fn check<W: World>(world: &W) -> Outcome {
    let started = Instant::now();
    let mut index: HashMap<W::State, usize> = HashMap::new();
    let mut states: Vec<W::State> = Vec::new();
    let mut parent: Vec<Option<(usize, W::Label)>> = Vec::new();
    for s in world.initial() {
        if !index.contains_key(&s) {
            index.insert(s.clone(), states.len());
            states.push(s);
            parent.push(None);
        }
    }
    let mut transitions = 0;
    let mut out = Vec::new();
    let mut next = 0;
    let fail = |states: &[W::State],
                parent: &[Option<(usize, W::Label)>],
                at: usize,
                msg: String| Outcome {
        states: states.len(),
        transitions: 0,
        elapsed: started.elapsed(),
        violation: Some(format!(
            "{msg}\ntrace:\n{}",
            trace(world, states, parent, at)
        )),
    };
    while next < states.len() {
        let s = states[next].clone();
        if let Err(msg) = world.check_state(&s) {
            return fail(&states, &parent, next, msg);
        }
        out.clear();
        if let Err(msg) = world.successors(&s, &mut out) {
            return fail(&states, &parent, next, msg);
        }
        if states.len() > STATE_LIMIT {
            let msg = format!("more than {STATE_LIMIT} states: is something unbounded?");
            return fail(&states, &parent, states.len() - 1, msg);
        }
        for (label, t) in out.drain(..) {
            transitions += 1;
            if !index.contains_key(&t) {
                index.insert(t.clone(), states.len());
                states.push(t);
                parent.push(Some((next, label)));
            }
        }
        next += 1;
    }
    // Liveness, memoised: a state whose fault-free continuation reached the goal is good.
    let mut good = vec![false; states.len()];
    for start in 0..states.len() {
        if good[start] || !world.alive(&states[start]) {
            continue;
        }
        let mut path = vec![start];
        let mut current = states[start].clone();
        let mut steps = Vec::new();
        loop {
            match world.fault_free(&current) {
                Ok(None) => break,
                Ok(Some((label, t))) => {
                    let Some(&i) = index.get(&t) else {
                        return fail(
                            &states,
                            &parent,
                            start,
                            format!("fault-free step {label:?} left the explored space"),
                        );
                    };
                    steps.push(label);
                    if good[i] {
                        break;
                    }
                    if path.len() > FAULT_FREE_LIMIT {
                        let msg = format!(
                            "liveness: no progress after {FAULT_FREE_LIMIT} fault-free steps: {steps:?}"
                        );
                        return fail(&states, &parent, start, msg);
                    }
                    path.push(i);
                    current = t;
                }
                Err(why) => {
                    let msg = format!(
                        "liveness: stuck ({why}) after fault-free steps {steps:?}\nin {}",
                        world.describe(&current)
                    );
                    return fail(&states, &parent, start, msg);
                }
            }
        }
        for i in path {
            good[i] = true;
        }
    }
    Outcome {
        states: states.len(),
        transitions,
        elapsed: started.elapsed(),
        violation: None,
    }
}

fn trace<W: World>(
    world: &W,
    states: &[W::State],
    parent: &[Option<(usize, W::Label)>],
    at: usize,
) -> String {
    let mut labels = Vec::new();
    let mut i = at;
    while let Some((p, label)) = &parent[i] {
        labels.push(label.clone());
        i = *p;
    }
    labels.reverse();
    let mut lines = vec![format!("  initial: {}", world.describe(&states[i]))];
    let mut j = i;
    for (n, l) in labels.iter().enumerate() {
        lines.push(format!("  {n:>3}. {l:?}"));
        let _ = &mut j;
    }
    lines.push(format!("  final: {}", world.describe(&states[at])));
    lines.join("\n")
}
