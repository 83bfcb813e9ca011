// The CloudBase seed example: add two numbers.
exports.main = async (event, context) => event.x + event.y
