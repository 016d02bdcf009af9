//! Multi-document YAML manifests (CRDs, samples, test tables) and creating them through the
//! apiserver as dynamic objects, so any kind the server knows can be created.

use std::path::{Path, PathBuf};

use kube::Client;
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::{Discovery, Scope};
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parsing {path}: {source}")]
    Parse {
        path: PathBuf,
        source: serde_yaml::Error,
    },
    #[error("object has no valid apiVersion/kind/metadata.name: {0}")]
    Shape(String),
    #[error("the apiserver does not serve {0}")]
    UnknownKind(String),
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

/// `dir/*.yaml` and `dir/*.yml`, sorted; a missing directory has none.
pub fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, ManifestError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ManifestError::Read {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    Ok(files)
}

/// Every non-empty document of a multi-document YAML file, as JSON values.
pub fn read_documents(path: &Path) -> Result<Vec<serde_json::Value>, ManifestError> {
    let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_documents(&text).map_err(|source| ManifestError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

/// Every non-empty document of a multi-document YAML text.
pub fn parse_documents(text: &str) -> Result<Vec<serde_json::Value>, serde_yaml::Error> {
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let value = serde_json::Value::deserialize(doc)?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

/// Maps manifests to dynamic APIs using the server's discovery (run once).
pub struct Resolver {
    client: Client,
    discovery: Discovery,
}

impl Resolver {
    pub async fn new(client: Client) -> Result<Self, ManifestError> {
        let discovery = Discovery::new(client.clone()).run().await?;
        Ok(Self { client, discovery })
    }

    /// The API for `object`'s kind, in its namespace (or `default_ns`) when namespaced.
    pub fn api_for(
        &self,
        object: &serde_json::Value,
        default_ns: &str,
    ) -> Result<(Api<DynamicObject>, DynamicObject), ManifestError> {
        let obj: DynamicObject = serde_json::from_value(object.clone())
            .map_err(|e| ManifestError::Shape(e.to_string()))?;
        let types = obj
            .types
            .clone()
            .ok_or_else(|| ManifestError::Shape("missing apiVersion/kind".into()))?;
        let (group, version) = match types.api_version.split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), types.api_version.clone()),
        };
        let gvk = GroupVersionKind::gvk(&group, &version, &types.kind);
        let (resource, caps) = self.discovery.resolve_gvk(&gvk).ok_or_else(|| {
            ManifestError::UnknownKind(format!("{}/{}", types.api_version, types.kind))
        })?;
        let api = match caps.scope {
            Scope::Namespaced => {
                let ns = obj.metadata.namespace.as_deref().unwrap_or(default_ns);
                Api::namespaced_with(self.client.clone(), ns, &resource)
            }
            Scope::Cluster => Api::all_with(self.client.clone(), &resource),
        };
        Ok((api, obj))
    }

    /// Creates `object` (server-side validation and admission included).
    pub async fn create(
        &self,
        object: &serde_json::Value,
        default_ns: &str,
    ) -> Result<DynamicObject, ManifestError> {
        let (api, obj) = self.api_for(object, default_ns)?;
        Ok(api.create(&PostParams::default(), &obj).await?)
    }

    /// Replaces the existing object of the same name with `object` (an UPDATE).
    pub async fn replace(
        &self,
        object: &serde_json::Value,
        default_ns: &str,
    ) -> Result<DynamicObject, ManifestError> {
        let (api, mut obj) = self.api_for(object, default_ns)?;
        let name = obj
            .metadata
            .name
            .clone()
            .ok_or_else(|| ManifestError::Shape("missing metadata.name".into()))?;
        let current = api.get(&name).await?;
        obj.metadata.resource_version = current.metadata.resource_version;
        Ok(api.replace(&name, &PostParams::default(), &obj).await?)
    }
}
