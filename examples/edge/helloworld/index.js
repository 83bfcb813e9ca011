// The Link IoT Edge seed example (invokeFunction): the function it calls.
module.exports.handler = function(event, context, callback) {
  console.log(event);   // String message from Invoker.
  console.log(context); // { requestId: '4', invokerContext: {custom: { data: 'Custom data from Invoker' }}}
  console.log(context.invokerContext.custom.data); // Custom data from Invoker
  console.log('-- hello world');
  callback(null, 'Message from helloworld'); // Return the result to Invoker.
};
