// The SDK's DaprServer calls `listen(port)`, which binds every interface; the tests stay on
// loopback, so a listen given only a port (and maybe a callback) binds 127.0.0.1 instead.
"use strict";
const http = require("http");

const listen = http.Server.prototype.listen;
http.Server.prototype.listen = function (port, ...rest) {
  if (typeof port === "number" && (rest.length === 0 || typeof rest[0] === "function")) {
    return listen.call(this, port, "127.0.0.1", ...rest);
  }
  return listen.call(this, port, ...rest);
};
