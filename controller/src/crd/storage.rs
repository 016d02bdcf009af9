//! Azure premium disk tiers and host caching modes, shared by every resource that asks for storage.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An Azure premium SSD tier. The tier fixes the size of the volume.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum Tier {
    P1,
    P2,
    P3,
    P4,
    P6,
    P10,
    P15,
    P20,
    P30,
    P40,
    P50,
    P60,
    P70,
    P80,
}

/// How the host caches a disk. Operating-system disks want `ReadWrite`, read-heavy data `ReadOnly`,
/// write-heavy data (logs, write-ahead logs, the replicated log) `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum CachingMode {
    #[default]
    None,
    ReadOnly,
    ReadWrite,
}

impl Tier {
    /// The size of a disk of this tier in GiB.
    pub fn size_gib(self) -> u64 {
        match self {
            Tier::P1 => 4,
            Tier::P2 => 8,
            Tier::P3 => 16,
            Tier::P4 => 32,
            Tier::P6 => 64,
            Tier::P10 => 128,
            Tier::P15 => 256,
            Tier::P20 => 512,
            Tier::P30 => 1024,
            Tier::P40 => 2048,
            Tier::P50 => 4096,
            Tier::P60 => 8192,
            Tier::P70 => 16384,
            Tier::P80 => 32768,
        }
    }

    /// The size as a Kubernetes quantity (`128Gi`, `1Ti`), as a PVC requests it.
    pub fn quantity(self) -> String {
        let gib = self.size_gib();
        if gib >= 1024 {
            format!("{}Ti", gib / 1024)
        } else {
            format!("{gib}Gi")
        }
    }

    /// Azure does not support host caching on disks of 4 TiB and larger.
    pub fn supports_host_caching(self) -> bool {
        self.size_gib() < 4096
    }
}

/// The CEL rule and its message for a struct with `tier` and `cachingMode` fields; the Rust
/// validation in `crate::validation` says the same words.
pub const CACHING_RULE: &str =
    "self.cachingMode == 'None' || !(self.tier in ['P50', 'P60', 'P70', 'P80'])";
pub const CACHING_MESSAGE: &str = "cachingMode must be None for tier P50 and larger: Azure does not support host caching on disks of 4 TiB or more";

/// A volume of one tier with one caching mode.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, kube::KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new(CACHING_RULE).message(CACHING_MESSAGE).field_path(".cachingMode"))]
pub struct Storage {
    /// Azure premium tier, which fixes the size: P1 4Gi, P2 8Gi, P3 16Gi, P4 32Gi, P6 64Gi, P10 128Gi,
    /// P15 256Gi, P20 512Gi, P30 1Ti, P40 2Ti, P50 4Ti, P60 8Ti, P70 16Ti, P80 32Ti.
    pub tier: Tier,
    /// Host caching: None, ReadOnly or ReadWrite. Must be None for P50 and larger.
    #[serde(default)]
    pub caching_mode: CachingMode,
}

impl Storage {
    pub fn new(tier: Tier, caching_mode: CachingMode) -> Self {
        Self { tier, caching_mode }
    }
}

/// What happens to the data volumes (claims and the PersistentVolumes bound to them) when the
/// resource that made them is deleted (see docs/adr/0002-deletion-keeps-data.md).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeletionPolicy {
    /// The claims outlive the resource (no owner reference) and their PersistentVolumes are
    /// set to `persistentVolumeReclaimPolicy: Retain`, so neither deleting the resource, its
    /// namespace nor its CRD deletes data.
    #[default]
    Retain,
    /// The claims are owned by the resource and deleted with it; their volumes are deleted too.
    Delete,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_follow_the_azure_table() {
        let table = [
            (Tier::P1, "4Gi"),
            (Tier::P10, "128Gi"),
            (Tier::P20, "512Gi"),
            (Tier::P30, "1Ti"),
            (Tier::P50, "4Ti"),
            (Tier::P80, "32Ti"),
        ];
        for (tier, q) in table {
            assert_eq!(tier.quantity(), q, "{tier:?}");
        }
    }

    #[test]
    fn host_caching_stops_at_four_tebibytes() {
        assert!(Tier::P40.supports_host_caching());
        assert!(!Tier::P50.supports_host_caching());
        assert!(!Tier::P80.supports_host_caching());
    }
}
