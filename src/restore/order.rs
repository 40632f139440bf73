//! The order a restore writes objects in: parents before the children that look them up.

use std::collections::{BTreeMap, BTreeSet};

use super::Schemas;

/// Objects ordered parents first: an object comes after every other object of the set it
/// looks up, or whose creates make records it looks up (`makes`). Objects in a cycle keep name
/// order (their lookups wait for the second pass).
pub(crate) fn parents_first(
    objects: &BTreeSet<String>,
    schemas: &Schemas,
    makes: &dyn Fn(&str) -> Vec<String>,
) -> Vec<String> {
    let empty = BTreeMap::new();
    let made: BTreeMap<&String, Vec<String>> = objects.iter().map(|o| (o, makes(o))).collect();
    let needs = |object: &str| -> BTreeSet<String> {
        let targets: BTreeSet<&String> = schemas
            .get(object)
            .unwrap_or(&empty)
            .values()
            .flat_map(|i| i.reference_to.iter())
            .collect();
        objects
            .iter()
            .filter(|parent| *parent != object)
            .filter(|parent| {
                targets.contains(parent) || made[parent].iter().any(|m| targets.contains(m))
            })
            .cloned()
            .collect()
    };
    let mut order = Vec::new();
    let mut left: BTreeSet<String> = objects.clone();
    while !left.is_empty() {
        let ready: Vec<String> = left
            .iter()
            .filter(|o| needs(o).iter().all(|p| !left.contains(p)))
            .cloned()
            .collect();
        let next = if ready.is_empty() {
            left.iter().take(1).cloned().collect()
        } else {
            ready
        };
        for o in next {
            left.remove(&o);
            order.push(o);
        }
    }
    order
}
