//! Simulators of mesos-master, mesos-agent and marathon for the end-to-end tests.
