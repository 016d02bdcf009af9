//! mesos-operator: Kubernetes resources for Apache Mesos, Marathon and ZooKeeper.

pub mod controllers;
pub mod crd;
pub mod dry_run;
pub mod http;
pub mod leader;
pub mod marathon;
pub mod mesos;
pub mod metrics;
pub mod quorum;
pub mod telemetry;
pub mod tls;
pub mod validation;
pub mod zookeeper;
