// The Link IoT Edge seed example: a callback-style handler.
module.exports.handler = function (event, context, callback) {
  console.log(event)
  console.log('-- hello world')
  callback(null, 'Message from helloworld')
}
