//! mesos-operator: Kubernetes resources for Apache Mesos, Marathon and ZooKeeper.

pub mod quorum;
