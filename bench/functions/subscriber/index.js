// For the messages phase's publish measurement: deployed under several names, each
// subscribed to bench/# (bench/run.sh writes its config.json), answering the message.
exports.main = async (event) => event;
