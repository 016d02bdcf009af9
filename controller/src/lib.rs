//! mesos-operator: Kubernetes resources for Apache Mesos, Marathon and ZooKeeper.

pub mod crd;
pub mod quorum;
pub mod validation;
