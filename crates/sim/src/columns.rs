//! `GET /query?q=…&columns=true`: the columns a query would return, without running it. The
//! official CLI's `data query` reads them to lay out its table. The shape is Salesforce's:
//! `columnMetadata` (one entry per selected column; a lookup path is one column named after the
//! relationship with the rest of the path in `joinColumns`, a subquery one `aggregate` column
//! with the child's columns in `joinColumns`, an aggregate function one `aggregate` column named
//! `expr0` or its alias, displayed as written), `entityName`, `groupBy`, `idSelected`,
//! `keyPrefix`.

use serde_json::{Value as Json, json};

use super::catalog::{Catalog, FieldDef, FieldType};
use super::soql::{Column, FieldPath, Query, Select};

/// The column metadata of `query`, as the response body.
pub(crate) fn metadata(catalog: &Catalog, query: &Query) -> Json {
    let object = &catalog.objects[query.object];
    let (columns, group_by) = match &query.select {
        Select::Count => (Vec::new(), false),
        Select::Fields(fields) => {
            let mut columns = paths(catalog, fields);
            for child in &query.children {
                columns.push(subquery(catalog, &child.relationship, &child.query));
            }
            (columns, false)
        }
        Select::Grouped { columns, group_by } => {
            let columns = columns
                .iter()
                .map(|column| match column {
                    Column::Group(path) => paths(catalog, std::slice::from_ref(path))
                        .pop()
                        .unwrap_or(Json::Null),
                    Column::Aggregate {
                        function,
                        field,
                        name,
                        written,
                    } => {
                        let numeric = match function {
                            super::soql::Aggregate::Count
                            | super::soql::Aggregate::CountDistinct => true,
                            _ => matches!(
                                field_def(catalog, field).field_type,
                                FieldType::Int
                                    | FieldType::Double
                                    | FieldType::Currency
                                    | FieldType::Percent
                            ),
                        };
                        entry(Entry {
                            name,
                            display: written,
                            aggregate: true,
                            numeric,
                            ..Entry::default()
                        })
                    }
                })
                .collect();
            (columns, !group_by.is_empty())
        }
    };
    let id_selected = match &query.select {
        Select::Fields(fields) => fields
            .iter()
            .any(|f| f.hops.is_empty() && field_def(catalog, f).field_type == FieldType::Id),
        _ => false,
    };
    json!({
        "columnMetadata": columns,
        "entityName": object.name,
        "groupBy": group_by,
        "idSelected": id_selected,
        "keyPrefix": object.key_prefix,
    })
}

fn field_def<'c>(catalog: &'c Catalog, path: &FieldPath) -> &'c FieldDef {
    &catalog.objects[path.field.0].fields[path.field.1]
}

/// A subquery's column: its relationship, with the child query's columns joined under it.
fn subquery(catalog: &Catalog, relationship: &str, child: &Query) -> Json {
    let joined = match &child.select {
        Select::Fields(fields) => paths(catalog, fields),
        _ => Vec::new(),
    };
    let mut column = entry(Entry {
        name: relationship,
        display: relationship,
        aggregate: true,
        ..Entry::default()
    });
    column["joinColumns"] = Json::Array(joined);
    column
}

/// The columns of a field list: plain fields in order, and paths through the same relationship
/// gathered into that relationship's one column, where its first path stands.
fn paths(catalog: &Catalog, fields: &[FieldPath]) -> Vec<Json> {
    let mut columns: Vec<(Option<String>, Json)> = Vec::new();
    for path in fields {
        let Some(&(object, lookup)) = path.hops.first() else {
            let def = field_def(catalog, path);
            columns.push((None, field_entry(def)));
            continue;
        };
        let lookup = &catalog.objects[object].fields[lookup];
        let relationship = lookup
            .relationship_name
            .clone()
            .unwrap_or_else(|| lookup.name.clone());
        let rest = FieldPath {
            display: path
                .display
                .split_once('.')
                .map(|(_, rest)| rest.to_string())
                .unwrap_or_default(),
            hops: path.hops[1..].to_vec(),
            field: path.field,
        };
        let joined = paths(catalog, std::slice::from_ref(&rest));
        let key = relationship.to_ascii_lowercase();
        match columns.iter_mut().find(|(k, _)| k.as_deref() == Some(&key)) {
            Some((_, column)) => {
                if let Some(list) = column["joinColumns"].as_array_mut() {
                    merge(list, joined);
                }
            }
            None => {
                let mut column = entry(Entry {
                    name: &relationship,
                    display: &relationship,
                    foreign_key: Some(&lookup.name),
                    ..Entry::default()
                });
                column["joinColumns"] = Json::Array(joined);
                columns.push((Some(key), column));
            }
        }
    }
    columns.into_iter().map(|(_, column)| column).collect()
}

/// Adds `joined` to a relationship's join columns, gathering deeper paths the same way.
fn merge(list: &mut Vec<Json>, joined: Vec<Json>) {
    for column in joined {
        let same = list.iter_mut().find(|c| {
            c["columnName"] == column["columnName"]
                && !c["foreignKeyName"].is_null()
                && !column["foreignKeyName"].is_null()
        });
        match (same, column["joinColumns"].as_array().cloned()) {
            (Some(existing), Some(deeper)) => {
                if let Some(existing) = existing["joinColumns"].as_array_mut() {
                    merge(existing, deeper);
                }
            }
            _ => list.push(column),
        }
    }
}

#[derive(Default)]
struct Entry<'a> {
    name: &'a str,
    display: &'a str,
    aggregate: bool,
    numeric: bool,
    foreign_key: Option<&'a str>,
    field: Option<&'a FieldDef>,
}

fn field_entry(def: &FieldDef) -> Json {
    entry(Entry {
        name: &def.name,
        display: &def.name,
        field: Some(def),
        ..Entry::default()
    })
}

fn entry(e: Entry) -> Json {
    let field_type = e.field.map(|f| f.field_type);
    let apex_type = field_type.map(|t| match t {
        FieldType::Id | FieldType::Reference => "Id",
        FieldType::String
        | FieldType::Textarea
        | FieldType::Email
        | FieldType::Phone
        | FieldType::Url
        | FieldType::Picklist => "String",
        FieldType::Boolean => "Boolean",
        FieldType::Int => "Integer",
        FieldType::Double | FieldType::Currency | FieldType::Percent => "Decimal",
        FieldType::Date => "Date",
        FieldType::Datetime => "Datetime",
        FieldType::Address => "Address",
        FieldType::Base64 => "Blob",
    });
    let text = matches!(
        field_type,
        Some(
            FieldType::String
                | FieldType::Textarea
                | FieldType::Email
                | FieldType::Phone
                | FieldType::Url
                | FieldType::Picklist
        )
    );
    let number = e.numeric
        || matches!(
            field_type,
            Some(FieldType::Int | FieldType::Double | FieldType::Currency | FieldType::Percent)
        );
    json!({
        "aggregate": e.aggregate,
        "apexType": apex_type,
        "booleanType": field_type == Some(FieldType::Boolean),
        "columnName": e.name,
        "custom": e.field.is_some_and(|f| f.custom),
        "displayName": e.display,
        "foreignKeyName": e.foreign_key,
        "insertable": e.field.is_some_and(|f| f.createable),
        "joinColumns": [],
        "numberType": number,
        "textType": text,
        "updatable": e.field.is_some_and(|f| f.updateable),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::soql;

    fn columns(soql_text: &str) -> Json {
        let catalog = Catalog::standard();
        let query = soql::parse(soql_text, &catalog, 0).expect("the query parses");
        metadata(&catalog, &query)
    }

    fn names(list: &Json) -> Vec<String> {
        list.as_array()
            .expect("a list of columns")
            .iter()
            .map(|c| c["columnName"].as_str().unwrap_or("?").to_string())
            .collect()
    }

    #[test]
    fn plain_fields_are_one_column_each_with_their_types() {
        let body = columns("SELECT Id, Name, NumberOfEmployees FROM Account");
        assert_eq!(body["entityName"], "Account");
        assert_eq!(body["keyPrefix"], "001");
        assert_eq!(body["idSelected"], true);
        assert_eq!(body["groupBy"], false);
        let list = &body["columnMetadata"];
        assert_eq!(names(list), ["Id", "Name", "NumberOfEmployees"]);
        assert_eq!(list[0]["apexType"], "Id");
        assert_eq!(list[1]["textType"], true);
        assert_eq!(list[1]["insertable"], true);
        assert_eq!(list[2]["numberType"], true);
        assert_eq!(list[2]["apexType"], "Integer");
    }

    #[test]
    fn paths_through_one_relationship_share_its_column() {
        let body = columns("SELECT Name, Owner.Name, Owner.Email, Parent.Name FROM Account");
        assert_eq!(body["idSelected"], false);
        let list = &body["columnMetadata"];
        assert_eq!(names(list), ["Name", "Owner", "Parent"]);
        assert_eq!(list[1]["foreignKeyName"], "OwnerId");
        assert_eq!(names(&list[1]["joinColumns"]), ["Name", "Email"]);
        assert_eq!(list[1]["apexType"], Json::Null);
    }

    #[test]
    fn a_subquery_is_an_aggregate_column_of_the_child_columns() {
        let body = columns("SELECT Name, (SELECT LastName, Email FROM Contacts) FROM Account");
        let list = &body["columnMetadata"];
        assert_eq!(names(list), ["Name", "Contacts"]);
        assert_eq!(list[1]["aggregate"], true);
        assert_eq!(names(&list[1]["joinColumns"]), ["LastName", "Email"]);
    }

    #[test]
    fn aggregate_functions_are_named_expr_n_and_displayed_as_written() {
        let body = columns(
            "SELECT Industry, count(Id), MAX(NumberOfEmployees) top FROM Account GROUP BY Industry",
        );
        assert_eq!(body["groupBy"], true);
        let list = &body["columnMetadata"];
        assert_eq!(names(list), ["Industry", "expr0", "top"]);
        assert_eq!(list[1]["displayName"], "count(Id)");
        assert_eq!(list[1]["aggregate"], true);
        assert_eq!(list[1]["numberType"], true);
        assert_eq!(list[2]["displayName"], "MAX(NumberOfEmployees)");
    }
}
