//! The membership planner: a pure state machine for ZooKeeper and Mesos master changes.
