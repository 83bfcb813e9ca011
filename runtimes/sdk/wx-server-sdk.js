// `require('wx-server-sdk')` in Cloudlet's js engine: the part of WeChat's
// cloud SDK that calls functions (init, DYNAMIC_CURRENT_ENV, callFunction
// as a promise and with success/fail/complete, getWXContext), with the
// answers and errors the real package gives against Cloudlet's TCB admin
// route. Its other parts (database, storage, openapi, payments) are not
// here: calling one throws an error that says so and points to the node
// engine, where the real package runs.
//
// A factory over the js engine's transport (crates/runtime/src/js/sdks.js).
'use strict';

module.exports = function wxServerSdk(transport) {
  const DYNAMIC_CURRENT_ENV = Symbol.for('SYMBOL_CURRENT_ENV');

  // The env a call names, or undefined for the caller's own. An env may be
  // an object naming one per service, as in cloud.init({env: {functions}}).
  function envName(env) {
    if (env === undefined || env === null || env === DYNAMIC_CURRENT_ENV) return undefined;
    if (typeof env === 'object') return envName(env.functions !== undefined ? env.functions : env.default);
    return String(env);
  }

  // The real package's error: errCode -1, errMsg and message
  // 'callFunction:fail <message>', the CloudBase code and the request ID.
  function failure(code, message, requestId) {
    const error = new Error(`callFunction:fail ${message}`);
    error.code = code;
    error.requestId = requestId;
    error.errCode = -1;
    error.errMsg = error.message;
    error.requestID = requestId;
    return error;
  }

  class Cloud {
    constructor() {
      this.config = {};
      this.DYNAMIC_CURRENT_ENV = DYNAMIC_CURRENT_ENV;
    }

    init(config) {
      this.config = Object.assign({}, config);
    }

    updateConfig(config) {
      Object.assign(this.config, config);
    }

    callFunction(options) {
      const { name, data, config = {}, success, fail, complete } = options || {};
      const env = envName(config.env !== undefined ? config.env : this.config.env);
      const call = typeof name !== 'string' || name === ''
        ? Promise.reject(failure('INVALID_PARAM', 'name must be a non-empty string'))
        : transport.invoke({
          action: 'functions.invokeFunction',
          function_name: name,
          request_data: data === undefined ? '' : JSON.stringify(data),
          envName: env,
        }).then((answer) => {
          if (answer.error) throw failure(answer.error.cloudbaseCode, answer.error.message, answer.requestId);
          return { result: answer.result === null ? null : JSON.parse(answer.result), errMsg: 'callFunction:ok', requestID: answer.requestId };
        }, (refused) => {
          throw failure(refused.cloudbaseCode, refused.message, undefined);
        });
      if (typeof success !== 'function' && typeof fail !== 'function' && typeof complete !== 'function') return call;
      call.then((res) => {
        if (typeof success === 'function') success(res);
        if (typeof complete === 'function') complete(res);
      }, (err) => {
        if (typeof fail === 'function') fail(err);
        if (typeof complete === 'function') complete(err);
      });
      return undefined;
    }

    getWXContext() {
      const context = transport.wxContext();
      const out = {};
      for (const key of Object.keys(context)) {
        if (context[key] !== null && context[key] !== undefined) out[key] = context[key];
      }
      return out;
    }
  }

  const missing = [
    'database', 'uploadFile', 'downloadFile', 'getTempFileURL', 'deleteFile', 'callOpenAPI',
    'getOpenData', 'getVoIPSign', 'getCloudCallSign', 'signature', 'registerService', 'ai',
  ];
  for (const method of missing) {
    Cloud.prototype[method] = function () {
      throw new Error(`wx-server-sdk: cloud.${method} is not available in Cloudlet's js engine, which has ` +
        'callFunction and getWXContext only; run the function on the node engine ("runtime": "Nodejs18.15") ' +
        'to use the real package');
    };
  }

  const cloud = new Cloud();
  const api = {
    version: 'cloudlet',
    DYNAMIC_CURRENT_ENV,
    Cloud,
    createNewInstance: (config) => { const instance = new Cloud(); instance.init(config); return instance; },
  };
  for (const method of ['init', 'updateConfig', 'callFunction', 'getWXContext', ...missing]) {
    api[method] = cloud[method].bind(cloud);
  }
  // Namespaces of the real package, each a property that explains itself.
  for (const namespace of ['openapi', 'cloudPay']) {
    Object.defineProperty(api, namespace, {
      enumerable: true,
      get() {
        throw new Error(`wx-server-sdk: cloud.${namespace} is not available in Cloudlet's js engine; ` +
          'run the function on the node engine ("runtime": "Nodejs18.15") to use the real package');
      },
    });
  }
  return api;
};
