// `require('@cloudbase/node-sdk')` in Cloudlet's js engine: the part of
// CloudBase's server SDK that calls functions (init, SYMBOL_CURRENT_ENV,
// app.callFunction, parseContext), with the answers and errors the real
// package gives against Cloudlet's TCB admin route: `{result, requestId}`,
// or a thrown error with CloudBase's `code`, the `message` and `requestId`.
// Its other parts (database, storage, auth, ai) throw an error that says
// they are not here and points to the node engine, where the real package
// runs.
//
// A factory over the js engine's transport (crates/runtime/src/js/sdks.js).
'use strict';

module.exports = function cloudbaseNodeSdk(transport) {
  const SYMBOL_CURRENT_ENV = Symbol.for('SYMBOL_CURRENT_ENV');
  const SYMBOL_DEFAULT_ENV = Symbol.for('SYMBOL_DEFAULT_ENV');

  function envName(env) {
    if (env === undefined || env === null || env === SYMBOL_CURRENT_ENV || env === SYMBOL_DEFAULT_ENV) return undefined;
    return String(env);
  }

  class TcbError extends Error {
    constructor(code, message, requestId) {
      super(message);
      this.name = 'Error';
      this.code = code;
      this.requestId = requestId;
    }
  }

  class CloudBase {
    constructor(config) {
      this.config = Object.assign({}, config);
    }

    callFunction(options, callOptions) {
      const { name, data } = options || {};
      if (typeof name !== 'string' || name === '') {
        return Promise.reject(new TcbError('INVALID_PARAM', 'function name must be a non-empty string'));
      }
      return transport.invoke({
        action: 'functions.invokeFunction',
        function_name: name,
        request_data: data === undefined ? '' : JSON.stringify(data),
        envName: envName(this.config.env),
        qualifier: options.qualifier,
      }).then((answer) => {
        if (answer.error) throw new TcbError(answer.error.cloudbaseCode, answer.error.message, answer.requestId);
        let result = answer.result;
        try { result = JSON.parse(answer.result); } catch (e) { /* the raw text, as the real SDK falls back to */ }
        return { result, requestId: answer.requestId };
      }, (refused) => {
        throw new TcbError(refused.cloudbaseCode, refused.message, undefined);
      });
    }
  }
  const missing = [
    'auth', 'database', 'ai', 'logger', 'callContainer', 'callApis', 'uploadFile', 'downloadFile',
    'copyFile', 'deleteFile', 'getTempFileURL', 'getFileInfo', 'getUploadMetadata', 'getFileAuthority',
    'analytics', 'registerExtension', 'invokeExtension', 'sendTemplateNotification',
  ];
  for (const method of missing) {
    CloudBase.prototype[method] = function () {
      throw new Error(`@cloudbase/node-sdk: app.${method} is not available in Cloudlet's js engine, which has ` +
        'callFunction only; run the function on the node engine ("runtime": "Nodejs18.15") to use the real package');
    };
  }

  // SCF's context fields as the SDK reads them: the function's environment.
  function parseContext(context) {
    if (context === null || typeof context !== 'object') throw new TcbError('INVALID_CONTEXT', 'context must be an object');
    let environment = {};
    try { environment = JSON.parse(context.environment || '{}'); } catch (e) { /* none */ }
    return Object.assign({}, context, { environment });
  }

  return {
    version: 'cloudlet',
    SYMBOL_CURRENT_ENV,
    SYMBOL_DEFAULT_ENV,
    init: (config) => new CloudBase(config),
    parseContext,
    getCloudbaseContext: (context) => (context ? parseContext(context).environment : {}),
    setThrowOnCode() {},
  };
};
