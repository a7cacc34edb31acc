//! `on:`: the events that trigger a workflow and their filters and inputs.

use super::common::{Scalar, Spanned, Text};
use crate::validate::reader::{Loc, Reader};
use crate::validate::schema::{event_spec, EventSpec, EVENTS};
use crate::yaml::{Node, Span, YamlValue};

/// The events of `on:`, in source order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Triggers {
    /// The events.
    pub events: Vec<Event>,
    /// Where `on:`'s value was written.
    pub span: Span,
    /// `on:`'s value as JSON, for matching events with [`crate::filters`].
    pub json: serde_json::Value,
}

impl Triggers {
    /// The event named `name`.
    pub fn event(&self, name: &str) -> Option<&Event> {
        self.events.iter().find(|e| e.name.value == name)
    }

    /// The compiled filters of every event, to match an event against.
    ///
    /// # Errors
    ///
    /// The first problem in a filter; a workflow that loaded without
    /// errors has none.
    pub fn filters(&self) -> Result<Vec<crate::filters::EventFilter>, crate::filters::FilterError> {
        crate::filters::workflow_triggers(&self.json)
    }
}

/// One event of `on:`.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The event's name, e.g. `push`.
    pub name: Text,
    /// What was written under it.
    pub config: EventConfig,
}

/// The settings of one event.
#[derive(Debug, Clone, PartialEq)]
pub enum EventConfig {
    /// Nothing: the event in every form.
    Any,
    /// Activity types and branch, tag and path filters.
    Filters(EventFilters),
    /// `schedule:`'s cron entries.
    Schedule(Vec<Schedule>),
    /// `workflow_dispatch:`'s inputs.
    WorkflowDispatch(WorkflowDispatch),
    /// `workflow_call:`'s inputs, secrets and outputs.
    WorkflowCall(WorkflowCall),
}

/// Filters of an event; each is `None` when not written.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventFilters {
    /// `types`: activity types.
    pub types: Option<Vec<Text>>,
    /// `branches`.
    pub branches: Option<Vec<Text>>,
    /// `branches-ignore`.
    pub branches_ignore: Option<Vec<Text>>,
    /// `tags`.
    pub tags: Option<Vec<Text>>,
    /// `tags-ignore`.
    pub tags_ignore: Option<Vec<Text>>,
    /// `paths`.
    pub paths: Option<Vec<Text>>,
    /// `paths-ignore`.
    pub paths_ignore: Option<Vec<Text>>,
    /// `workflows` of `workflow_run`.
    pub workflows: Option<Vec<Text>>,
    /// `names` of `image_version`.
    pub names: Option<Vec<Text>>,
    /// `versions` of `image_version`.
    pub versions: Option<Vec<Text>>,
}

/// One entry of `schedule:`.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// The POSIX cron expression.
    pub cron: Text,
    /// `timezone`, an IANA name.
    pub timezone: Option<Text>,
}

/// `workflow_dispatch:`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WorkflowDispatch {
    /// The inputs, in source order.
    pub inputs: Vec<DispatchInput>,
}

/// The type of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputType {
    /// `string` (the default for `workflow_dispatch`).
    String,
    /// `boolean`.
    Boolean,
    /// `number`.
    Number,
    /// `choice`, one of `options` (`workflow_dispatch` only).
    Choice,
    /// `environment`, an environment of the repository (`workflow_dispatch` only).
    Environment,
}

/// An input of `workflow_dispatch`.
#[derive(Debug, Clone, PartialEq)]
pub struct DispatchInput {
    /// The input's name.
    pub name: Text,
    /// `description`.
    pub description: Option<Text>,
    /// `required`.
    pub required: bool,
    /// `type`.
    pub kind: InputType,
    /// `default`.
    pub default: Option<Spanned<Scalar>>,
    /// `options` of a `choice`.
    pub options: Vec<Text>,
}

/// `workflow_call:`: what a reusable workflow takes and gives.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WorkflowCall {
    /// `inputs`.
    pub inputs: Vec<CallInput>,
    /// `secrets`.
    pub secrets: Vec<CallSecret>,
    /// `outputs`.
    pub outputs: Vec<CallOutput>,
}

/// An input of a reusable workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct CallInput {
    /// The input's name.
    pub name: Text,
    /// `description`.
    pub description: Option<Text>,
    /// `required`.
    pub required: bool,
    /// `type`: string, boolean or number.
    pub kind: InputType,
    /// `default`, which may use `github`, `inputs` and `vars`.
    pub default: Option<Spanned<Scalar>>,
}

/// A secret of a reusable workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct CallSecret {
    /// The secret's name.
    pub name: Text,
    /// `description`.
    pub description: Option<Text>,
    /// `required`.
    pub required: bool,
}

/// An output of a reusable workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct CallOutput {
    /// The output's name.
    pub name: Text,
    /// `description`.
    pub description: Option<Text>,
    /// `value`, computed from `jobs.<id>.outputs`.
    pub value: Text,
}

pub(crate) fn read_triggers(r: &mut Reader, key: &Node, node: &Node, loc: &Loc) -> Triggers {
    let mut triggers = Triggers {
        events: Vec::new(),
        span: node.span,
        json: node.to_json(),
    };
    match &node.value {
        YamlValue::String(_) => {
            if let Some(name) = event_name(r, node, loc) {
                triggers.events.push(default_event(r, name, node));
            }
        }
        YamlValue::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                if let Some(name) = event_name(r, item, &loc.item(i)) {
                    triggers.events.push(default_event(r, name, item));
                }
            }
        }
        YamlValue::Mapping(entries) => {
            for (event_key, value) in entries {
                if let Some(name) = event_name(r, event_key, loc) {
                    let at = loc.key(&name.value);
                    let config = read_event_config(r, &name.value, value, &at);
                    triggers.events.push(Event { name, config });
                }
            }
        }
        _ => r.wrong_type(node, loc, "an event name, a sequence of them or a mapping"),
    }
    if triggers.events.is_empty() && !r.has_errors() {
        r.error(key.span.start, "'on' lists no event");
    }
    triggers
}

/// An event named without settings (`on: push`, `on: [push]`).
fn default_event(r: &mut Reader, name: Text, node: &Node) -> Event {
    if name.value == "schedule" {
        // GitHub accepts the bare name but a schedule without cron entries
        // never fires; say so rather than load a workflow that cannot run.
        r.error(
            node.span.start,
            "'schedule' needs a sequence of 'cron' entries",
        );
    }
    Event {
        name,
        config: EventConfig::Any,
    }
}

/// Reads an event name and checks that GitHub knows it.
fn event_name(r: &mut Reader, node: &Node, loc: &Loc) -> Option<Text> {
    let Some(name) = node.as_str() else {
        r.wrong_type(node, loc, "an event name");
        return None;
    };
    if event_spec(name).is_none() {
        let hint = crate::validate::suggest_hint(name, EVENTS.iter().map(|e| e.name));
        r.error(node.span.start, format!("unknown event '{name}'{hint}"));
        return None;
    }
    Some(Spanned::new(name.to_owned(), node.span))
}

fn read_event_config(r: &mut Reader, name: &str, node: &Node, loc: &Loc) -> EventConfig {
    match name {
        "schedule" => return EventConfig::Schedule(read_schedule(r, node, loc)),
        "workflow_dispatch" if !node.is_null() => {
            return EventConfig::WorkflowDispatch(read_dispatch(r, node, loc))
        }
        "workflow_call" if !node.is_null() => {
            return EventConfig::WorkflowCall(read_call(r, node, loc))
        }
        _ => {}
    }
    if node.is_null() {
        return EventConfig::Any;
    }
    let Some(spec) = event_spec(name) else {
        return EventConfig::Any;
    };
    let Some(entries) = r.mapping(node, loc) else {
        return EventConfig::Any;
    };
    EventConfig::Filters(read_filters(r, spec, entries, loc))
}

fn read_filters(
    r: &mut Reader,
    spec: &EventSpec,
    entries: &[(Node, Node)],
    loc: &Loc,
) -> EventFilters {
    let mut filters = EventFilters::default();
    for (key, value) in entries {
        let Some(key_name) = key.as_str() else {
            r.wrong_type(key, loc, "a string key");
            continue;
        };
        if !spec.keys.contains(&key_name) {
            r.unknown_key(key, key_name, loc, spec.keys);
            continue;
        }
        let at = loc.key(key_name);
        let list = Some(r.string_list(value, &at));
        match key_name {
            "types" => {
                if let (Some(allowed), Some(types)) = (spec.types, &list) {
                    for t in types {
                        if !allowed.contains(&t.value.as_str()) {
                            let hint =
                                crate::validate::suggest_hint(&t.value, allowed.iter().copied());
                            let hint = if hint.is_empty() {
                                format!(" (expected one of: {})", allowed.join(", "))
                            } else {
                                hint
                            };
                            r.error(
                                t.span.start,
                                format!(
                                    "unknown activity type '{}' for event '{}'{hint}",
                                    t.value, spec.name
                                ),
                            );
                        }
                    }
                }
                filters.types = list;
            }
            "branches" | "branches-ignore" | "tags" | "tags-ignore" | "paths" | "paths-ignore"
            | "workflows" => {
                check_patterns(
                    r,
                    spec.name,
                    key_name,
                    key,
                    list.as_deref().unwrap_or_default(),
                );
                match key_name {
                    "branches" => filters.branches = list,
                    "branches-ignore" => filters.branches_ignore = list,
                    "tags" => filters.tags = list,
                    "tags-ignore" => filters.tags_ignore = list,
                    "paths" => filters.paths = list,
                    "paths-ignore" => filters.paths_ignore = list,
                    _ => filters.workflows = list,
                }
            }
            "names" => filters.names = list,
            _ => filters.versions = list,
        }
    }
    // A filter and its negation cannot both be given for one event. GitHub does not hold
    // `merge_group` to this: it accepts both `branches` and `branches-ignore` there.
    let pairs: &[(&str, &str)] = if crate::filters::allows_filter_with_its_ignore(spec.name) {
        &[]
    } else {
        &[
            ("branches", "branches-ignore"),
            ("tags", "tags-ignore"),
            ("paths", "paths-ignore"),
        ]
    };
    for &(include, exclude) in pairs {
        let find = |k: &str| entries.iter().find(|(key, _)| key.as_str() == Some(k));
        if let (Some(_), Some((exclude_key, _))) = (find(include), find(exclude)) {
            r.error(
                exclude_key.span.start,
                format!(
                    "event '{}' cannot have both '{include}' and '{exclude}'",
                    spec.name
                ),
            );
        }
    }
    filters
}

/// Compiles the filter patterns under `key` as [`crate::filters`] will when the workflow is
/// matched against an event, so that a bad pattern is reported at load time, at the pattern.
fn check_patterns(r: &mut Reader, event: &str, key: &str, key_node: &Node, patterns: &[Text]) {
    let mut has_positive = false;
    let mut has_negative = false;
    for pattern in patterns {
        match crate::filters::Pattern::new(&pattern.value) {
            Ok(p) if p.is_negative() => has_negative = true,
            Ok(_) => has_positive = true,
            Err(e) => r.error(pattern.span.start, e.to_string()),
        }
    }
    if has_negative && !has_positive && matches!(key, "branches" | "tags" | "paths") {
        r.error(
            key_node.span.start,
            format!(
                "'{event}.{key}' has only '!' patterns, so it matches nothing: add a positive \
                 pattern first, or use '{key}-ignore' to only exclude"
            ),
        );
    }
}

fn read_schedule(r: &mut Reader, node: &Node, loc: &Loc) -> Vec<Schedule> {
    let Some(items) = r.sequence(node, loc) else {
        return Vec::new();
    };
    let mut schedules = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = loc.item(i);
        let Some(entries) = r.mapping(item, &at) else {
            continue;
        };
        let mut cron = None;
        let mut timezone = None;
        let mut has_cron = false;
        for (key, _, value) in r.fixed_entries(entries, &at) {
            if key == "cron" {
                has_cron = true;
                cron = r.non_empty_string(value, &at.key(key));
                if let Some(c) = &cron {
                    if let Err(problem) = super::cron::check(&c.value) {
                        r.error(
                            value.span.start,
                            format!("invalid cron expression '{}': {problem}", c.value),
                        );
                    }
                }
            } else {
                timezone = r.non_empty_string(value, &at.key(key));
            }
        }
        if !has_cron {
            r.error(item.span.start, format!("'{}' needs 'cron'", at.path));
        }
        if let Some(cron) = cron {
            schedules.push(Schedule { cron, timezone });
        }
    }
    schedules
}

fn input_type(r: &mut Reader, node: &Node, loc: &Loc, allowed: &[&str]) -> Option<InputType> {
    let text = r.one_of(node, loc, allowed)?;
    Some(match text.value.as_str() {
        "boolean" => InputType::Boolean,
        "number" => InputType::Number,
        "choice" => InputType::Choice,
        "environment" => InputType::Environment,
        _ => InputType::String,
    })
}

fn read_dispatch(r: &mut Reader, node: &Node, loc: &Loc) -> WorkflowDispatch {
    let mut dispatch = WorkflowDispatch::default();
    let Some(entries) = r.mapping(node, loc) else {
        return dispatch;
    };
    // GitHub reads only `inputs` here and ignores any other key (`description`, `branches`,
    // ...), which many workflows carry; so does Hearth.
    let inputs = entries
        .iter()
        .filter(|(key, _)| key.as_str() == Some("inputs"))
        .map(|(_, value)| value);
    for inputs_node in inputs {
        let inputs_loc = loc.key("inputs");
        if inputs_node.is_null() {
            continue;
        }
        let Some(inputs) = r.mapping(inputs_node, &inputs_loc) else {
            continue;
        };
        for (name_node, input_node) in inputs {
            let Some(name) = r.loose_key(name_node, &inputs_loc) else {
                continue;
            };
            let at = inputs_loc.any_key(&name.value);
            let mut input = DispatchInput {
                name,
                description: None,
                required: false,
                kind: InputType::String,
                default: None,
                options: Vec::new(),
            };
            if input_node.is_null() {
                dispatch.inputs.push(input);
                continue;
            }
            let Some(fields) = r.mapping(input_node, &at) else {
                continue;
            };
            for (key, _, value) in r.fixed_entries(fields, &at) {
                let field = at.key(key);
                match key {
                    "description" => input.description = r.string(value, &field),
                    "required" => {
                        input.required = r.plain_boolean(value, &field).is_some_and(|b| b.value)
                    }
                    "type" => {
                        input.kind = input_type(
                            r,
                            value,
                            &field,
                            &["string", "boolean", "number", "choice", "environment"],
                        )
                        .unwrap_or(InputType::String)
                    }
                    "default" => input.default = r.scalar(value, &field),
                    _ => input.options = r.sequence_of_strings(value, &field),
                }
            }
            if input.kind == InputType::Choice && input.options.is_empty() {
                r.error(
                    input_node.span.start,
                    format!(
                        "input '{}' of type 'choice' needs 'options'",
                        input.name.value
                    ),
                );
            }
            if let (
                InputType::Choice,
                Some(Spanned {
                    value: Scalar::String(d),
                    span,
                }),
            ) = (input.kind, &input.default)
            {
                if !input.options.iter().any(|o| &o.value == d) {
                    r.error(
                        span.start,
                        format!(
                            "default '{d}' of input '{}' is not one of its options",
                            input.name.value
                        ),
                    );
                }
            }
            dispatch.inputs.push(input);
        }
    }
    dispatch
}

fn read_call(r: &mut Reader, node: &Node, loc: &Loc) -> WorkflowCall {
    let mut call = WorkflowCall::default();
    let Some(entries) = r.mapping(node, loc) else {
        return call;
    };
    for (key, _, value) in r.fixed_entries(entries, loc) {
        let section = loc.key(key);
        if value.is_null() {
            continue;
        }
        let Some(items) = r.mapping(value, &section) else {
            continue;
        };
        for (name_node, item) in items {
            let Some(name) = r.loose_key(name_node, &section) else {
                continue;
            };
            let at = section.any_key(&name.value);
            match key {
                "inputs" => {
                    if let Some(input) = read_call_input(r, name, item, &at) {
                        call.inputs.push(input);
                    }
                }
                "secrets" => {
                    let mut secret = CallSecret {
                        name,
                        description: None,
                        required: false,
                    };
                    if !item.is_null() {
                        if let Some(fields) = r.mapping(item, &at) {
                            for (field, _, v) in r.fixed_entries(fields, &at) {
                                let field_loc = at.key(field);
                                if field == "required" {
                                    secret.required =
                                        r.plain_boolean(v, &field_loc).is_some_and(|b| b.value);
                                } else {
                                    secret.description = r.string(v, &field_loc);
                                }
                            }
                        }
                    }
                    call.secrets.push(secret);
                }
                _ => {
                    let Some(fields) = r.mapping(item, &at) else {
                        continue;
                    };
                    let mut description = None;
                    let mut output_value = None;
                    for (field, _, v) in r.fixed_entries(fields, &at) {
                        let field_loc = at.key(field);
                        if field == "value" {
                            output_value = r.string(v, &field_loc);
                        } else {
                            description = r.string(v, &field_loc);
                        }
                    }
                    match output_value {
                        Some(value) => call.outputs.push(CallOutput {
                            name,
                            description,
                            value,
                        }),
                        None if !fields.iter().any(|(k, _)| k.as_str() == Some("value")) => {
                            r.error(
                                item.span.start,
                                format!("output '{}' of 'workflow_call' needs 'value'", name.value),
                            );
                        }
                        None => {}
                    }
                }
            }
        }
    }
    call
}

fn read_call_input(r: &mut Reader, name: Text, node: &Node, loc: &Loc) -> Option<CallInput> {
    let fields = r.mapping(node, loc)?;
    let mut input = CallInput {
        name,
        description: None,
        required: false,
        kind: InputType::String,
        default: None,
    };
    let mut has_type = false;
    for (key, _, value) in r.fixed_entries(fields, loc) {
        let at = loc.key(key);
        match key {
            "description" => input.description = r.string(value, &at),
            "required" => input.required = r.plain_boolean(value, &at).is_some_and(|b| b.value),
            "type" => {
                has_type = true;
                input.kind = input_type(r, value, &at, &["string", "boolean", "number"])
                    .unwrap_or(InputType::String);
            }
            _ => input.default = r.scalar(value, &at),
        }
    }
    if !has_type {
        r.error(
            node.span.start,
            format!(
                "input '{}' of 'workflow_call' needs 'type' (string, boolean or number)",
                input.name.value
            ),
        );
    }
    Some(input)
}
