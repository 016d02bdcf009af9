//! Test harness for mesos-operator: local control plane, node runner and simulators.
