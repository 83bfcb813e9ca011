// Link IoT Edge's function SDK (`require('linkedge-core-sdk')`) as Cloudlet
// gives it to functions in both engines. The real package is part of the
// edge runtime and not on npm; this one has its API (seed 004, aliyun's
// linkedge-core-sdk-nodejs) and calls functions through Cloudlet's
// invocation service instead of the edge's IPC.
//
// A factory over the engine's transport, shared by both engines: the node
// engine's goes over HTTP to the TCB admin route
// (runtimes/node/modules/linkedge-core-sdk/index.js), the js engine's
// straight to the service (crates/runtime/src/js/calls.rs). Either takes a
// call in the TCB `functions.invokeFunction` body's fields and resolves with
// `{requestId, result}` (the callee's JSON text; null for an Async call) or
// `{requestId, error: {code, message, errorType, stack}}` when the callee
// failed, and rejects with an Error whose `code` says why the call was
// refused (an unknown function, a chain too deep, bad parameters). Its
// `publish` takes a message as `{topic, payloadType, request_data}` and
// resolves with `{messageId, deliveries}`.
//
// The rules, documented in docs/sdks.md:
// - `serviceName` names an env when one of that name exists, else the
//   caller's own; `functionId` may be given instead, in the ARN form
//   `acs:fc:<region>:<account>:services/<service>[.<qualifier>]/functions/<function>`.
// - `payload`: a string reaches the callee's `event` as that string, a
//   Buffer as a Buffer, anything else as its JSON.
// - Sync answers `{statusCode, functionError, payload}`: `payload` is the
//   callee's result, a string as itself and any other value as its JSON
//   text; when the callee failed, `functionError` is
//   'UnhandledInvocationError' and `payload` the error as JSON
//   (`{errorMessage, errorType, stackTrace}`), as Function Compute has it.
// - Async calls back at once with the callee's request ID.
// - Without a callback, invokeFunction returns a promise of the same.
// - IoTData.publish({topic, payload}) publishes to the topic in the
//   caller's env, its payload as invokeFunction's; it calls back with the
//   message's ID. The device APIs of IoTData are refused as NOT_AVAILABLE.
'use strict';

module.exports = function linkedgeCoreSdk(transport) {
  const ARN = /^acs:fc:[^:]*:[^:]*:services\/([^/]+?)(?:\.([^/.]+))?\/functions\/([^/]+)$/;

  function refusal(message) {
    const error = new Error(message);
    error.code = 'INVALID_PARAM';
    return error;
  }

  // The callee: { serviceName, functionName, qualifier }, or an Error.
  function callee(params) {
    if (typeof params.functionId === 'string' && params.functionId !== '') {
      const match = ARN.exec(params.functionId);
      if (match === null) {
        return refusal(`functionId "${params.functionId}" is not of the form ` +
          'acs:fc:<region>:<account>:services/<serviceName>[.<qualifier>]/functions/<functionName>.');
      }
      // FC's LATEST is the current version, as $LATEST is.
      const qualifier = match[2] === 'LATEST' ? undefined : match[2];
      return { serviceName: match[1], qualifier, functionName: match[3] };
    }
    if (typeof params.functionName !== 'string' || params.functionName === '') {
      return refusal(`Can't find required parameter "functionName" (or "functionId").`);
    }
    if (params.serviceName !== undefined && typeof params.serviceName !== 'string') {
      return refusal('serviceName must be a string.');
    }
    return { serviceName: params.serviceName || undefined, functionName: params.functionName };
  }

  function payloadOf(payload) {
    if (payload === undefined || payload === null) return { payloadType: 'text', request_data: '' };
    if (typeof payload === 'string') return { payloadType: 'text', request_data: payload };
    if (payload instanceof Uint8Array) {
      return { payloadType: 'binary', request_data: Buffer.from(payload).toString('base64') };
    }
    return { payloadType: 'json', request_data: JSON.stringify(payload) };
  }

  // The body of the call, or an Error for parameters that cannot make one.
  function request(params) {
    if (params === null || typeof params !== 'object') {
      return refusal('invokeFunction needs a params object.');
    }
    const target = callee(params);
    if (target instanceof Error) return target;
    const invocationType = params.invocationType == null ? 'Sync' : params.invocationType;
    if (invocationType !== 'Sync' && invocationType !== 'Async') {
      return refusal(`Incorrect invocationType ${invocationType}. It should be "Sync" or "Async".`);
    }
    const invokerContext = params.invokerContext == null ? undefined : params.invokerContext;
    if (invokerContext !== undefined && typeof invokerContext !== 'string') {
      return refusal('invokerContext must be a base64 string of JSON text.');
    }
    return Object.assign({
      action: 'functions.invokeFunction',
      function_name: target.functionName,
      serviceName: target.serviceName,
      qualifier: target.qualifier,
      invocationType,
      invokerContext,
    }, payloadOf(params.payload));
  }

  function payloadText(json) {
    if (json === null || json === undefined) return '';
    try {
      const value = JSON.parse(json);
      return typeof value === 'string' ? value : json;
    } catch (e) {
      return json;
    }
  }

  function answer(body, answered) {
    if (body.invocationType === 'Async') return answered.requestId;
    if (answered.error) {
      const error = answered.error;
      const stackTrace = typeof error.stack === 'string' ? error.stack.split('\n').slice(1).map((line) => line.trim()) : [];
      const errorType = error.errorType || error.code;
      // The service words a thrown error as Node prints it ("TypeError: …").
      const prefix = `${errorType}: `;
      const errorMessage = error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message;
      return {
        statusCode: 200,
        functionError: 'UnhandledInvocationError',
        payload: JSON.stringify({ errorMessage, errorType, stackTrace }),
      };
    }
    return { statusCode: 200, functionError: undefined, payload: payloadText(answered.result) };
  }

  // The real package's callback style, and a promise without a callback.
  function reply(result, callback) {
    if (typeof callback !== 'function') return result;
    result.then((data) => callback(null, data), (err) => callback(err));
    return undefined;
  }

  class FCClient {
    invokeFunction(params, callback) {
      const body = request(params);
      const result = body instanceof Error
        ? Promise.reject(body)
        : transport.invoke(body).then((answered) => answer(body, answered));
      return reply(result, callback);
    }
  }

  // The message of IoTData.publish: `topic` and `payload` are required, as
  // the real package has them; the payload travels as invokeFunction's.
  function message(params) {
    if (params === null || typeof params !== 'object') return refusal('publish needs a params object.');
    if (typeof params.topic !== 'string' || params.topic === '') {
      return refusal(`Can't find required parameter "topic".`);
    }
    if (params.payload === undefined || params.payload === null) {
      return refusal(`Can't find required parameter "payload".`);
    }
    return Object.assign({ action: 'messages.publish', topic: params.topic }, payloadOf(params.payload));
  }

  // The rest of the real package (its device APIs, its credentials),
  // which Cloudlet does not have.
  function notYet(what) {
    return `${what} is not available in Cloudlet: of Link IoT Edge's function SDK, ` +
      'functions have FCClient.invokeFunction and IoTData.publish.';
  }

  class IoTData {
    // Publishes to the topic in the function's own env. The answer is the
    // message's ID, as the real package answers with the ID of the call
    // that carries the message; it is the `msg:{ID}:{function}` of each
    // subscriber's delivery.
    publish(params, callback) {
      const body = message(params);
      const result = body instanceof Error
        ? Promise.reject(body)
        : transport.publish(body).then((published) => published.messageId);
      return reply(result, callback);
    }
  }
  for (const method of ['getThingProperties', 'setThingProperties', 'callThingService', 'getThingsWithTags']) {
    IoTData.prototype[method] = function (params, callback) {
      const error = new Error(notYet(`IoTData.${method}`));
      error.code = 'NOT_AVAILABLE';
      return reply(Promise.reject(error), callback);
    };
  }
  class CredentialProviderChain {
    constructor() {
      throw new Error(notYet('CredentialProviderChain'));
    }
  }

  return { FCClient, IoTData, CredentialProviderChain };
};
