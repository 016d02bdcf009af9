//! An exhaustive model check of the planner: breadth-first search over every interleaving of
//! planner decisions, member crashes and restarts, lost pods and volumes, unreachable members,
//! operator crashes between the parts of an action, spec edits and passed deadlines.
//!
//! Safety properties are checked on every reachable state and every planner action;
//! liveness: from every reachable state where enough data survives, the fault-free
//! continuation reaches `Done`.

mod checker;
mod cluster;
mod scenarios;

pub(crate) use scenarios::{Scenario, masters_scenarios, zookeeper_scenarios};

#[cfg(test)]
mod tests {
    use super::scenarios::{Budget, masters, spec, zookeeper};
    use super::*;
    use crate::quorum::step::Flaws;

    /// Run every scenario, print its figures, and fail with the trace of any violation.
    fn run_all(scenarios: Vec<Scenario>) {
        let (mut states, mut elapsed) = (0, std::time::Duration::ZERO);
        for scenario in scenarios {
            let outcome = scenario.run(Flaws::NONE);
            println!(
                "{}: {} states, {} transitions, {:.2?}",
                scenario.name, outcome.states, outcome.transitions, outcome.elapsed
            );
            states += outcome.states;
            elapsed += outcome.elapsed;
            if let Some(violation) = outcome.violation {
                panic!("{}: {violation}", scenario.name);
            }
        }
        println!("total: {states} states in {elapsed:.2?}");
    }

    #[test]
    fn quorum_model_masters_bounded() {
        run_all(masters_scenarios(false));
    }

    #[test]
    fn quorum_model_zookeeper_bounded() {
        run_all(zookeeper_scenarios(false));
    }

    #[test]
    #[ignore = "large configuration: run with --ignored"]
    fn quorum_model_large_masters() {
        run_all(masters_scenarios(true));
    }

    #[test]
    #[ignore = "large configuration: run with --ignored"]
    fn quorum_model_large_zookeeper() {
        run_all(zookeeper_scenarios(true));
    }

    fn expect_violation(flaws: Flaws, wanted: &str) {
        let grow = masters((3, 2), vec![spec((5, 3), 1, 0, 0)], Budget(0, 0, 0, 0, 0));
        expect_violation_in(&grow, flaws, wanted);
    }

    fn expect_violation_in(scenario: &Scenario, flaws: Flaws, wanted: &str) {
        let outcome = scenario.run(flaws);
        let violation = outcome
            .violation
            .expect("the checker missed a broken planner");
        println!("{violation}");
        assert!(
            violation.contains(wanted),
            "unexpected violation: {violation}"
        );
    }

    #[test]
    fn quorum_model_catches_masters_created_before_the_quorum_is_raised() {
        expect_violation(
            Flaws {
                create_before_raise: true,
                ..Flaws::NONE
            },
            "safety: 4 masters could run",
        );
    }

    #[test]
    fn quorum_model_catches_a_repair_from_a_minority() {
        let wanted = "only members behind the committed state hold data";
        let flaws = Flaws {
            repair_without_quorum: true,
            ..Flaws::NONE
        };
        let zk = zookeeper(3, vec![spec((1, 1), 3, 0, 0)], Budget(3, 0, 0, 0, 1));
        expect_violation_in(&zk, flaws, wanted);
        let m = masters((3, 2), vec![spec((3, 2), 1, 0, 0)], Budget(2, 0, 0, 0, 1));
        expect_violation_in(&m, flaws, wanted);
    }

    #[test]
    fn quorum_model_catches_a_skipped_catch_up_gate() {
        expect_violation(
            Flaws {
                skip_catch_up: true,
                ..Flaws::NONE
            },
            "while another was not recovered",
        );
    }
}
