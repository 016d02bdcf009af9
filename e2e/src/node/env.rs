//! A container's environment: image env, then `env` (values, downward API field refs,
//! ConfigMap/Secret keys) and `envFrom`, with Kubernetes' `$(VAR)` expansion.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret};
use kube::{Api, Client};

/// Facts the downward API can expose that are not in the Pod object yet.
pub struct Downward<'a> {
    pub pod: &'a Pod,
    pub pod_ip: &'a str,
    pub host_ip: &'a str,
}

/// Builds the environment as an ordered list (later entries win).
pub async fn build(
    client: &Client,
    container: &Container,
    base: &[(String, String)],
    downward: &Downward<'_>,
) -> Result<Vec<(String, String)>, String> {
    let ns = downward
        .pod
        .metadata
        .namespace
        .as_deref()
        .unwrap_or("default");
    let mut env: Vec<(String, String)> = base.to_vec();
    for from in container.env_from.as_deref().unwrap_or_default() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let data = if let Some(r) = &from.config_map_ref {
            config_map(client, ns, &r.name, r.optional == Some(true)).await?
        } else if let Some(r) = &from.secret_ref {
            secret(client, ns, &r.name, r.optional == Some(true)).await?
        } else {
            BTreeMap::new()
        };
        env.extend(data.into_iter().map(|(k, v)| (format!("{prefix}{k}"), v)));
    }
    for var in container.env.as_deref().unwrap_or_default() {
        let value = match (&var.value, &var.value_from) {
            (Some(v), _) => expand(v, &env),
            (None, Some(from)) => {
                if let Some(f) = &from.field_ref {
                    field(downward, &f.field_path)?
                } else if let Some(k) = &from.config_map_key_ref {
                    let data = config_map(client, ns, &k.name, k.optional == Some(true)).await?;
                    match data.get(&k.key) {
                        Some(v) => v.clone(),
                        None if k.optional == Some(true) => continue,
                        None => {
                            return Err(format!(
                                "couldn't find key {} in ConfigMap {ns}/{}",
                                k.key, k.name
                            ));
                        }
                    }
                } else if let Some(k) = &from.secret_key_ref {
                    let data = secret(client, ns, &k.name, k.optional == Some(true)).await?;
                    match data.get(&k.key) {
                        Some(v) => v.clone(),
                        None if k.optional == Some(true) => continue,
                        None => {
                            return Err(format!(
                                "couldn't find key {} in Secret {ns}/{}",
                                k.key, k.name
                            ));
                        }
                    }
                } else {
                    String::new()
                }
            }
            (None, None) => String::new(),
        };
        env.push((var.name.clone(), value));
    }
    Ok(env)
}

/// Expands `$(NAME)` from `env` (unknown names stay as written, `$$` escapes a `$`).
pub fn expand(text: &str, env: &[(String, String)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some(inner) = tail.strip_prefix("$(")
            && let Some(end) = inner.find(')')
        {
            let name = &inner[..end];
            match env.iter().rev().find(|(k, _)| k == name) {
                Some((_, v)) => out.push_str(v),
                None => out.push_str(&tail[..end + 3]),
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

fn field(d: &Downward<'_>, path: &str) -> Result<String, String> {
    let meta = &d.pod.metadata;
    let spec = d.pod.spec.as_ref();
    let keyed = |map: Option<&BTreeMap<String, String>>, prefix: &str| {
        let key = path.strip_prefix(prefix)?.strip_suffix("']")?;
        Some(map.and_then(|m| m.get(key).cloned()).unwrap_or_default())
    };
    let value = match path {
        "metadata.name" => meta.name.clone(),
        "metadata.namespace" => meta.namespace.clone(),
        "metadata.uid" => meta.uid.clone(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()),
        "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()),
        "status.podIP" | "status.podIPs" => Some(d.pod_ip.to_string()),
        "status.hostIP" | "status.hostIPs" => Some(d.host_ip.to_string()),
        _ => keyed(meta.labels.as_ref(), "metadata.labels['")
            .or_else(|| keyed(meta.annotations.as_ref(), "metadata.annotations['")),
    };
    value.ok_or_else(|| format!("unsupported fieldRef {path:?}"))
}

async fn config_map(
    client: &Client,
    ns: &str,
    name: &str,
    optional: bool,
) -> Result<BTreeMap<String, String>, String> {
    match Api::<ConfigMap>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
    {
        Ok(Some(cm)) => Ok(cm.data.unwrap_or_default()),
        Ok(None) if optional => Ok(BTreeMap::new()),
        Ok(None) => Err(format!("configmap {name:?} not found")),
        Err(e) => Err(e.to_string()),
    }
}

async fn secret(
    client: &Client,
    ns: &str,
    name: &str,
    optional: bool,
) -> Result<BTreeMap<String, String>, String> {
    match Api::<Secret>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
    {
        Ok(Some(s)) => Ok(s
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
            .collect()),
        Ok(None) if optional => Ok(BTreeMap::new()),
        Ok(None) => Err(format!("secret {name:?} not found")),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_follows_kubernetes_rules() {
        let env = vec![("POD_IP".to_string(), "10.244.0.5".to_string())];
        assert_eq!(expand("--ip=$(POD_IP):5050", &env), "--ip=10.244.0.5:5050");
        assert_eq!(
            expand("$(MISSING) $$(POD_IP) $x", &env),
            "$(MISSING) $(POD_IP) $x"
        );
    }
}
