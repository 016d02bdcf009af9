//! Test harness for mesos-operator: a real local Kubernetes control plane, a node runner that
//! runs pods as local processes, and helpers for end-to-end tests and the demo.

pub mod control_plane;
pub mod manifests;
pub mod paths;
pub mod pki;
pub mod ports;
pub mod process;

pub use control_plane::{ControlPlane, ControlPlaneError, ControlPlaneOptions};
pub mod node;

pub use node::{NodeRunner, NodeRunnerConfig, NodeRunnerError, NodeSpec};
