// `require('linkedge-core-sdk')` in Cloudlet's node engine: the SDK of
// runtimes/sdk/linkedge-core-sdk.js (written beside this file as sdk.js)
// over HTTP to the server's TCB admin route (its functions.invokeFunction
// action for calls, Cloudlet's messages.publish for messages), with the
// invocation's own credential. The engine sets both, per invocation, in the
// variables the CloudBase SDKs read (TCB_CONTEXT_CNFG,
// TENCENTCLOUD_SESSIONTOKEN).
'use strict';

const http = require('http');
const makeSdk = require('./sdk.js');

function refused(code, message) {
  const error = new Error(message);
  error.code = code;
  return error;
}

// The route's answer as the SDK takes it (see sdk.js).
function answered(body) {
  if (body.code === undefined) {
    const data = body.data || {};
    return { requestId: body.requestId, result: data.response_data === '' ? null : data.response_data };
  }
  if (body.code === 'FUNCTIONS_EXECUTE_FAIL') {
    return {
      requestId: body.requestId,
      error: {
        code: body.cloudletCode,
        cloudbaseCode: body.code,
        message: body.message,
        errorType: body.errorType,
        stack: body.stack,
      },
    };
  }
  throw refused(body.cloudletCode || body.code, body.message);
}

// Sends `body` to the TCB admin route with the invocation's credential;
// resolves with the route's JSON answer.
function exchange(body) {
  return new Promise((resolve, reject) => {
    let url;
    try {
      url = new URL(JSON.parse(process.env.TCB_CONTEXT_CNFG).URL);
    } catch (e) {
      reject(refused('SYS_ERR', 'linkedge-core-sdk can call functions only inside a Cloudlet invocation (TCB_CONTEXT_CNFG is not set)'));
      return;
    }
    const text = JSON.stringify(Object.assign({ sessionToken: process.env.TENCENTCLOUD_SESSIONTOKEN }, body));
    const request = http.request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
    }, (response) => {
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('end', () => {
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString()));
        } catch (e) {
          reject(refused('SYS_ERR', `the server answered ${response.statusCode} with a body that is not JSON`));
        }
      });
      response.on('error', reject);
    });
    request.on('error', (e) => reject(refused('SYS_ERR', `cannot reach the server: ${e.message}`)));
    request.end(text);
  });
}

function invoke(call) {
  return exchange(call).then(answered);
}

// A published message's answer: `data` is {messageId, deliveries}.
function publish(message) {
  return exchange(message).then((body) => {
    if (body.code !== undefined) throw refused(body.cloudletCode || body.code, body.message);
    return body.data;
  });
}

module.exports = makeSdk({ invoke, publish });
