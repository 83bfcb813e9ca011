//! The checks every event passes before an engine sees it.

use bytes::Bytes;
use cloudlet_core::{EnvId, ErrorCode, FunctionKind};
use cloudlet_runtime::{DeployedFunction, Event, Identity};

use super::InvokeError;

/// The deepest nesting of arrays and objects an event may have. The engine
/// parses the event recursively on an instance's bounded native stack, and the
/// JSON check below does not count depth (serde_json skips values without
/// recursing).
pub(crate) const MAX_EVENT_DEPTH: usize = 512;

/// The event as the engine gets it. Text and bytes go as they are; a JSON
/// event is checked, so that the engines can trust it.
pub(super) fn checked(event: Event) -> Result<Event, InvokeError> {
    match event {
        Event::Json(json) => checked_json(json).map(Event::Json),
        other => Ok(other),
    }
}

/// Refuses an event for an HTTP function, and an HTTP request for an event
/// function, saying how to call each.
pub(super) fn fits(
    event: &Event,
    function: &DeployedFunction,
    env: &EnvId,
) -> Result<(), InvokeError> {
    let name = &function.name;
    match (matches!(event, Event::Http(_)), function.config.kind) {
        (true, FunctionKind::Http) | (false, FunctionKind::Event) => Ok(()),
        (true, FunctionKind::Event) => Err(InvokeError::new(
            ErrorCode::InvalidFunctionType,
            format!(
                "{name} is an event function, not an HTTP function: invoke it with an event \
                 (POST /v1/envs/{env}/functions/{name}), not on a web path"
            ),
        )),
        (false, FunctionKind::Http) => Err(InvokeError::new(
            ErrorCode::InvalidFunctionType,
            format!(
                "{name} is an HTTP function (it has an scf_bootstrap): call it on a web path \
                 (/v1/envs/{env}/functions/{name}/web/...), or with ?webfn=true or \
                 X-Tcb-Webfn: true"
            ),
        )),
    }
}

/// A checked JSON object event with the end user added as `userInfo`
/// (`{appId, openId}`), as WeChat gives functions called on a user's
/// behalf; it replaces a `userInfo` the caller sent, which a function must
/// not be able to forge. Other events, and calls for no user, are unchanged.
pub(super) fn with_user_info(event: Event, identity: &Identity) -> Event {
    let (Event::Json(json), false) = (
        &event,
        identity.openid.is_none() && identity.appid.is_none(),
    ) else {
        return event;
    };
    let text = String::from_utf8_lossy(json);
    let trimmed = text.trim();
    if !trimmed.starts_with('{') {
        return event;
    }
    let user_info = serde_json::json!({"appId": identity.appid, "openId": identity.openid});
    // The last of two equal keys wins in JSON.parse, so adding it at the end
    // replaces the caller's without re-encoding the event in another order.
    let body = trimmed[1..trimmed.len() - 1].trim();
    let separator = if body.is_empty() { "" } else { "," };
    Event::Json(Bytes::from(format!(
        "{{{body}{separator}\"userInfo\":{user_info}}}"
    )))
}

/// Empty (or white space) means `{}`; what is not JSON, or nests too deep,
/// is the caller's error, not the function's.
pub(super) fn checked_json(event: Bytes) -> Result<Bytes, InvokeError> {
    if event.iter().all(u8::is_ascii_whitespace) {
        return Ok(Bytes::from_static(b"{}"));
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(&event).map_err(|e| {
        InvokeError::new(
            ErrorCode::InvalidParam,
            format!("the request body is not valid JSON: {e}"),
        )
    })?;
    if nesting_depth(&event) > MAX_EVENT_DEPTH {
        return Err(InvokeError::new(
            ErrorCode::InvalidParam,
            format!("the event nests arrays and objects more than {MAX_EVENT_DEPTH} levels deep"),
        ));
    }
    Ok(event)
}

/// How deeply a valid JSON text nests arrays and objects.
fn nesting_depth(json: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &byte in json {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> Identity {
        Identity {
            openid: Some("o-1".into()),
            appid: Some("wx-app".into()),
            unionid: None,
        }
    }

    fn parsed(event: Event) -> serde_json::Value {
        match event {
            Event::Json(json) => serde_json::from_slice(&json).expect("JSON"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_call_for_a_user_gives_the_event_their_user_info() {
        let event = Event::Json(Bytes::from_static(
            br#"{"x": 1, "userInfo": {"openId": "forged"}}"#,
        ));
        let value = parsed(with_user_info(event, &user()));
        assert_eq!(value["x"], 1);
        assert_eq!(value["userInfo"]["openId"], "o-1");
        assert_eq!(value["userInfo"]["appId"], "wx-app");
        let empty = parsed(with_user_info(
            Event::Json(Bytes::from_static(b"{}")),
            &user(),
        ));
        assert_eq!(empty["userInfo"]["openId"], "o-1");
    }

    #[test]
    fn a_call_for_no_user_and_events_that_are_not_objects_are_unchanged() {
        let array = || Event::Json(Bytes::from_static(b"[1]"));
        assert_eq!(parsed(with_user_info(array(), &user())), parsed(array()));
        let object = || Event::Json(Bytes::from_static(b"{\"x\":1}"));
        assert_eq!(
            parsed(with_user_info(object(), &Identity::default())),
            parsed(object())
        );
    }

    #[test]
    fn nesting_depth_skips_strings() {
        assert_eq!(nesting_depth(b"1"), 0);
        assert_eq!(nesting_depth(br#"{"a":[1,{"b":[]}]}"#), 4);
        assert_eq!(nesting_depth(br#"{"a":"[[[{{{\"]]"}"#), 1);
        assert_eq!(nesting_depth(br#"[[],[[]],[]]"#), 3);
    }

    #[test]
    fn an_empty_event_is_an_empty_object() {
        assert_eq!(checked_json(Bytes::from_static(b" \n")).unwrap(), "{}");
    }

    #[test]
    fn malformed_and_too_deep_events_are_the_callers_errors() {
        let bad = checked_json(Bytes::from_static(b"{\"x\":")).unwrap_err();
        assert_eq!(bad.code, ErrorCode::InvalidParam);
        let deep = format!("{}{}", "[".repeat(600), "]".repeat(600));
        let deep = checked_json(Bytes::from(deep)).unwrap_err();
        assert!(deep.message.contains("512"), "{deep:?}");
    }

    #[test]
    fn text_and_binary_events_are_not_taken_for_json() {
        let text = checked(Event::Text("{not json".into())).unwrap();
        assert!(matches!(text, Event::Text(t) if t == "{not json"));
        let binary = checked(Event::Binary(Bytes::from_static(b"\xff{"))).unwrap();
        assert!(matches!(binary, Event::Binary(b) if b == b"\xff{"[..]));
    }
}
