// The vendors' SDKs for calling functions, as built-in modules of the js
// engine: `wx-server-sdk`, `@cloudbase/node-sdk` and `linkedge-core-sdk`
// (their sources are in runtimes/sdk/). Loaded into an instance on its first
// `require` of one of them.
//
// This module is their transport: a call goes to the host (`callFunction`,
// crates/runtime/src/js/calls.rs), which starts it on the invocation
// service and returns an ID; the instance's event loop hands the answer back
// through `settle`, which settles the call's promise here. A published
// message (`publish`) goes the same way. `make` gives an SDK's factory
// (runtimes/sdk/) the transport.
export default function sdks(callFunction, publish, wxContext) {
  // The promises of the calls in flight, by ID.
  let waiting = new Map();

  function refused(answer) {
    const error = new Error(answer.message);
    error.code = answer.code;
    error.cloudbaseCode = answer.cloudbaseCode;
    return error;
  }

  // The promise of the host's answer to the request it started as `id`.
  function started(id) {
    return new Promise((resolve, reject) => waiting.set(id, { resolve, reject }));
  }

  const transport = {
    // The call as TCB's functions.invokeFunction body. Resolves with
    // {requestId, result} or {requestId, error}; rejects when refused.
    invoke(body) {
      return started(callFunction(body));
    },
    // The message as {topic, request_data, payloadType}. Resolves with
    // {messageId, deliveries}; rejects when refused.
    publish(body) {
      return started(publish(body)).then((answer) => ({
        messageId: answer.requestId,
        deliveries: Number(answer.result),
      }));
    },
    // getWXContext's fields for the invocation in progress.
    wxContext() {
      return JSON.parse(wxContext());
    },
  };

  return {
    make(factory) {
      return factory(transport);
    },
    // The answer's parts (crates/runtime/src/js/calls.rs, `Answered`): the
    // failure, when there is one, is JSON text.
    settle(id, requestId, result, failure, wasRefused) {
      const call = waiting.get(id);
      if (call === undefined) return;
      waiting.delete(id);
      if (failure === undefined) call.resolve({ requestId, result: result === undefined ? null : result });
      else if (wasRefused) call.reject(refused(JSON.parse(failure)));
      else call.resolve({ requestId, error: JSON.parse(failure) });
    },
    // A new invocation: calls of the last one will never be answered.
    reset() {
      if (waiting.size !== 0) waiting = new Map();
    },
  };
}
