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
// refused (an unknown function, a chain too deep, bad parameters).
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

  class FCClient {
    invokeFunction(params, callback) {
      const body = request(params);
      const result = body instanceof Error
        ? Promise.reject(body)
        : transport.invoke(body).then((answered) => answer(body, answered));
      if (typeof callback !== 'function') return result;
      result.then((data) => callback(null, data), (err) => callback(err));
      return undefined;
    }
  }

  // The rest of the real package's exports, which Cloudlet does not have yet.
  function notYet(what) {
    return `${what} is not available in Cloudlet yet: Link IoT Edge's device and message APIs ` +
      '(IoTData: publish, getThingProperties, setThingProperties, callThingService, getThingsWithTags) ' +
      'are not in functions; messages are published with POST /v1/envs/{env}/topics/{topic}/messages ' +
      '(cloudlet publish), and FCClient.invokeFunction is available.';
  }
  class IoTData {}
  for (const method of ['publish', 'getThingProperties', 'setThingProperties', 'callThingService', 'getThingsWithTags']) {
    IoTData.prototype[method] = function (params, callback) {
      const error = new Error(notYet(`IoTData.${method}`));
      error.code = 'NOT_AVAILABLE';
      if (typeof callback === 'function') {
        Promise.resolve().then(() => callback(error));
        return undefined;
      }
      return Promise.reject(error);
    };
  }
  class CredentialProviderChain {
    constructor() {
      throw new Error(notYet('CredentialProviderChain'));
    }
  }

  return { FCClient, IoTData, CredentialProviderChain };
};
