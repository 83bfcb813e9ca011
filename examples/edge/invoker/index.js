// The Link IoT Edge seed example (invokeFunction): the function that calls.
'use strict';

const leSdk = require('linkedge-core-sdk');
const fc = new leSdk.FCClient();

module.exports.handler = function (event, context, callback) {
  var ctx = {
    custom: {
      data: 'Custom context from Invoker',
    },
  };
  var invokerContext = Buffer.from(JSON.stringify(ctx)).toString('base64');
  var invokeParams = {
    serviceName: 'EdgeFC',
    functionName: 'helloworld',
    invocationType: 'Sync',
    invokerContext: invokerContext,
    payload: 'String message from Invoker.',
  };
  fc.invokeFunction(invokeParams, (err, data) => {
    if (err) {
      console.log(err);
    } else {
      console.log(data.payload); // Message from helloworld
    }
    callback(null);
  });
};
