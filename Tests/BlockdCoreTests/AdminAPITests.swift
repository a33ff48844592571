// The admin API of `blockd serve` (docs/ADMIN.md) against a real daemon on ephemeral ports:
// every endpoint's success path and error statuses, idempotent and concurrent creates, role
// assignment by epoch, a created volume served over iSCSI, delete, and /metrics.

import BlockEngine
import BlockdCore
import Foundation
import Glibc
import Logging
import ServiceLifecycle
import Testing

@Suite("blockd serve: admin API")
struct AdminAPITests {
    @Test("create (201), get one and all, an identical create again (200), other parameters (409)")
    func createAndGet() async throws {
        try await AdminDaemon.run(creates: [(name: "boot", sizeBytes: 8 << 20)]) { daemon in
            let created = try await daemon.createVolume("alpha", sizeBytes: 16 << 20, extra: #","blockSizeBytes":512"#)
            #expect(created.status == 201, "\(created.text)")
            #expect(created.headers["content-type"] == "application/json")
            let status = try created.decode(VolumeStatus.self)
            #expect(status.name == "alpha" && status.sizeBytes == 16 << 20 && status.blockSizeBytes == 512)
            #expect(status.durability == "best_effort" && status.replicaFactor == 1)
            #expect(status.role == "primary", "a standalone volume is reported as primary")
            #expect(status.epoch == 0 && status.replicas == [] && status.target == daemon.targetName("alpha"))
            #expect(FileManager.default.fileExists(atPath: daemon.dataDirectory + "/alpha.blk"))

            // The exact keys other tools read.
            let object = try #require(try JSONSerialization.jsonObject(with: Data(created.body)) as? [String: Any])
            #expect(Set(object.keys) == ["name", "target", "uuid", "sizeBytes", "blockSizeBytes", "durability",
                                         "replicaFactor", "role", "epoch", "lsn", "replicas"])
            #expect(Set((object["lsn"] as? [String: Any] ?? [:]).keys) == ["head", "durable", "checkpoint", "committed"])

            let one = try await daemon.request("GET", "/v1/volumes/alpha")
            #expect(try one.status == 200 && (one.decode(VolumeStatus.self)) == status)
            let all = try await daemon.request("GET", "/v1/volumes")
            #expect(all.status == 200)
            #expect(try all.decode([VolumeStatus].self).map(\.name) == ["alpha", "boot"], "sorted, with --create's volume")

            let again = try await daemon.createVolume("alpha", sizeBytes: 16 << 20, extra: #","blockSizeBytes":512"#)
            #expect(again.status == 200, "the same parameters: idempotent")
            #expect(try again.decode(VolumeStatus.self).uuid == status.uuid)
            let other = try await daemon.createVolume("alpha", sizeBytes: 32 << 20)
            #expect(other.status == 409)
            #expect(other.errorMessage?.contains("exists with other parameters") == true, "\(other.text)")
            let strict = try await daemon.createVolume("q", sizeBytes: 8 << 20,
                                                       extra: #","durability":"sync_quorum","replicaFactor":3"#)
            #expect(try strict.status == 201 && (strict.decode(VolumeStatus.self)).durability == "sync_quorum")
        }
    }

    @Test("bad input is 400 with what was wrong", arguments: [
        (#"{"name":"bad/name","sizeBytes":8388608}"#, "invalid volume name"),
        (#"{"name":"v","sizeBytes":0}"#, "volume size must be positive"),
        (#"{"name":"v","sizeBytes":1000}"#, "is not a multiple of 4096"),
        (#"{"name":"v","sizeBytes":8388608,"blockSizeBytes":1024}"#, "block size must be 512 or 4096"),
        (#"{"name":"v","sizeBytes":8388608,"durability":"fast"}"#, "unknown durability mode 'fast'"),
        (#"{"name":"v","sizeBytes":8388608,"durability":"sync_quorum"}"#, "sync_quorum needs a replica factor of at least 3"),
        (#"{"name":"v","sizeBytes":8388608,"replicaFactor":10}"#, "replica factor 10 is outside"),
        (#"{"name":"v","sizeBytes":8388608,"blocksize":512}"#, "unknown field 'blocksize'"),
        (#"{"name":"v"}"#, "missing field 'sizeBytes'"),
        (#"{"name":"v","sizeBytes":"8MiB"}"#, "field 'sizeBytes' has the wrong type"),
        (#"{"name":"v","sizeBytes":-1}"#, "field 'sizeBytes': must not be negative"),
        (#"{"name":"v","sizeBytes":8388608"#, "malformed JSON: "),
        (#"{"name":"v" "sizeBytes":1}"#, "malformed JSON: "),
        (#"[1,2]"#, "the body must be a JSON object"),
        ("", "needs a JSON body"),
    ])
    func badCreate(body: String, reason: String) async throws {
        try await AdminDaemon.run { daemon in
            let reply = try await daemon.request("POST", "/v1/volumes", json: body)
            #expect(reply.status == 400, "\(reply.text)")
            #expect(reply.errorMessage?.contains(reason) == true, "\(reply.text)")
            #expect(try await daemon.request("GET", "/v1/volumes").decode([VolumeStatus].self).isEmpty, "nothing created")
        }
    }

    @Test("404 for unknown routes and absent volumes, 405 with Allow for wrong methods, 413 for large bodies")
    func routeErrors() async throws {
        try await AdminDaemon.run { daemon in
            let unknown = try await daemon.request("GET", "/v2/volumes")
            #expect(unknown.text == #"{"error":"no such route: /v2/volumes"}"#, "slashes are not escaped")
            for (method, path) in [("GET", "/"), ("GET", "/v2/volumes"), ("GET", "/v1/volumes/a/b/c"), ("GET", "/v1/volumes/absent"),
                                   ("DELETE", "/v1/volumes/absent"), ("GET", "/v1/volumes/..")] {
                let reply = try await daemon.request(method, path)
                #expect(reply.status == 404 && reply.errorMessage != nil, "\(method) \(path): \(reply.text)")
            }
            let role = try await daemon.request("PUT", "/v1/volumes/absent/role", json: #"{"role":"primary","epoch":1}"#)
            #expect(role.status == 404, "\(role.text)")

            for (method, path, allow) in [("DELETE", "/v1/volumes", "GET, POST"), ("POST", "/v1/volumes/x", "GET, DELETE"),
                                          ("GET", "/v1/volumes/x/role", "PUT"), ("POST", "/metrics", "GET"),
                                          ("PATCH", "/v1/volumes", "GET, POST")] {
                let reply = try await daemon.request(method, path)
                #expect(reply.status == 405 && reply.errorMessage != nil, "\(method) \(path): \(reply.text)")
                #expect(reply.headers["allow"] == allow)
            }

            let large = #"{"name":"big","sizeBytes":8388608,"pad":""# + String(repeating: "x", count: 100 << 10) + #""}"#
            let declared = try await daemon.request("POST", "/v1/volumes", json: large)
            #expect(declared.status == 413 && declared.errorMessage?.contains("larger than 65536 bytes") == true)
            // Without a Content-Length the bound applies while reading.
            let chunk = Array(large.utf8)
            let chunked = try await HTTPClient.send(
                port: daemon.adminPort, method: "POST", path: "/v1/volumes", headers: [("Transfer-Encoding", "chunked")],
                rawBody: Array(String(chunk.count, radix: 16).utf8) + Array("\r\n".utf8) + chunk + Array("\r\n0\r\n\r\n".utf8))
            #expect(chunked.status == 413, "\(chunked.text)")
            #expect(try await daemon.request("GET", "/v1/volumes/big").status == 404)
            // The daemon still answers.
            #expect(try await daemon.request("GET", "/v1/volumes").status == 200)
        }
    }

    @Test("with a token, every request needs Authorization: Bearer <token> (401 otherwise)")
    func bearerToken() async throws {
        let token = "s3cret-token-0123456789"
        try await AdminDaemon.run(token: token) { daemon in
            for path in ["/v1/volumes", "/metrics", "/no/such/route"] {
                let missing = try await daemon.request("GET", path, token: "")
                #expect(missing.status == 401 && missing.headers["www-authenticate"]?.hasPrefix("Bearer") == true, "\(path)")
                #expect(missing.errorMessage != nil)
                #expect(try await daemon.request("GET", path, token: token + "x").status == 401)
                #expect(try await daemon.request("GET", path, token: String(token.dropLast())).status == 401)
            }
            let basic = try await daemon.request("GET", "/v1/volumes", token: "", headers: [("Authorization", "Basic \(token)")])
            #expect(basic.status == 401)
            #expect(try await daemon.createVolume("guarded").status == 201, "the right token passes")
            #expect(try await daemon.request("GET", "/v1/volumes").status == 200)
            #expect(try await daemon.request("GET", "/metrics").status == 200)
        }
    }

    @Test("concurrent creates of one name: one creates (201), the others see it (200 or 409)")
    func concurrentCreates() async throws {
        try await AdminDaemon.run { daemon in
            let sizes: [UInt64] = [8 << 20, 16 << 20, 8 << 20, 16 << 20, 8 << 20, 16 << 20]
            let port = daemon.adminPort
            let replies = try await withThrowingTaskGroup(of: (UInt64, Int).self) { group in
                for size in sizes {
                    group.addTask {
                        let body = Array(#"{"name":"race","sizeBytes":\#(size)}"#.utf8)
                        return (size, try await HTTPClient.send(port: port, method: "POST", path: "/v1/volumes", body: body).status)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let winners = replies.filter { $0.1 == 201 }
            #expect(winners.count == 1, "\(replies)")
            let winningSize = try #require(winners.first?.0)
            for (size, status) in replies where status != 201 {
                #expect(status == (size == winningSize ? 200 : 409), "\(replies)")
            }
            let status = try await daemon.request("GET", "/v1/volumes/race").decode(VolumeStatus.self)
            #expect(status.sizeBytes == winningSize)
        }
    }

    @Test("roles: lower epochs and role changes at an equal epoch are 409; a renewal and higher epochs are 200")
    func roleAssignment() async throws {
        try await AdminDaemon.run { daemon in
            #expect(try await daemon.createVolume("r").status == 201)
            func assign(_ body: String) async throws -> HTTPReply {
                try await daemon.request("PUT", "/v1/volumes/r/role", json: body)
            }
            // Standalone at epoch 0 (reported as primary): taking primary needs a higher epoch.
            let same = try await assign(#"{"role":"primary","epoch":0}"#)
            #expect(same.status == 409 && same.errorMessage?.contains("stale epoch: 0 offered, the volume is at epoch 0") == true,
                    "\(same.text)")
            let primary = try await assign(#"{"role":"primary","epoch":2,"leaseMs":60000,"replicas":["127.0.0.1:7001","[::1]:7002"]}"#)
            #expect(primary.status == 200, "\(primary.text)")
            let status = try primary.decode(VolumeStatus.self)
            #expect(status.role == "primary" && status.epoch == 2)
            #expect(status.replicas == [ReplicaStatus(address: "127.0.0.1:7001", state: "inSync", durableLSN: 0, shippedBytes: 4096),
                                        ReplicaStatus(address: "[::1]:7002", state: "inSync", durableLSN: 0, shippedBytes: 4096)],
                    "replicas come from the replication seam")
            #expect(try await assign(#"{"role":"primary","epoch":2,"leaseMs":60000}"#).status == 200, "renewal")
            let lower = try await assign(#"{"role":"primary","epoch":1}"#)
            #expect(lower.status == 409 && lower.errorMessage?.contains("stale epoch: 1 offered") == true, "\(lower.text)")
            #expect(try await assign(#"{"role":"replica","epoch":2}"#).status == 409, "another role at the same epoch")
            let replica = try await assign(#"{"role":"replica","epoch":3}"#)
            #expect(try replica.status == 200 && (replica.decode(VolumeStatus.self)).role == "replica")
            let none = try await assign(#"{"role":"none","epoch":3}"#)
            #expect(try none.status == 200 && (none.decode(VolumeStatus.self)).role == "none", "none may keep the epoch")

            #expect(daemon.replication.changes == [
                .init(name: "r", role: .primary, replicas: ["127.0.0.1:7001", "[::1]:7002"]),
                .init(name: "r", role: .primary, replicas: []),
                .init(name: "r", role: .replica, replicas: []),
                .init(name: "r", role: .none, replicas: []),
            ], "the seam hears of every successful assignment and of nothing refused")

            for (body, reason) in [
                (#"{"role":"fenced","epoch":9}"#, "role must be primary, replica or none"),
                (#"{"role":"standalone","epoch":9}"#, "role must be primary, replica or none"),
                (#"{"role":"replica","epoch":9,"leaseMs":1000}"#, "leaseMs is for a primary only"),
                (#"{"role":"primary","epoch":9,"leaseMs":0}"#, "leaseMs must be within"),
                (#"{"role":"replica","epoch":9,"replicas":["127.0.0.1:7001"]}"#, "replicas are for a primary only"),
                (#"{"role":"primary","epoch":9,"replicas":["no-port"]}"#, "expects HOST:PORT"),
                (#"{"role":"primary","epoch":9,"replicas":["h:1","h:1"]}"#, "named twice"),
                (#"{"role":"primary"}"#, "missing field 'epoch'"),
                (#"{"role":"primary","epoch":9,"lease":5}"#, "unknown field 'lease'"),
            ] {
                let reply = try await assign(body)
                #expect(reply.status == 400 && reply.errorMessage?.contains(reason) == true, "\(body): \(reply.text)")
            }
        }
    }

    @Test("a role survives the daemon: it is persisted before the API answers")
    func rolePersisted() async throws {
        let directory = try ScratchDirectory()
        var path = ""
        try await AdminDaemon.run { daemon in
            #expect(try await daemon.createVolume("p").status == 201)
            let reply = try await daemon.request("PUT", "/v1/volumes/p/role", json: #"{"role":"replica","epoch":7}"#)
            #expect(reply.status == 200)
            path = directory.path + "/p.blk"
            try FileManager.default.copyItem(atPath: daemon.dataDirectory + "/p.blk", toPath: path)
        }
        let report = try Volume.inspect(at: path)
        #expect(report.role == "replica" && report.epoch == 7)
    }

    @Test("a created volume is served as an iSCSI target at once; delete closes its session, removes it, and a new create works")
    func servedThenDeleted() async throws {
        try await AdminDaemon.run { daemon in
            #expect(try await daemon.createVolume("disk1", sizeBytes: 16 << 20).status == 201)
            #expect(daemon.daemon.servedTargets.contains(daemon.targetName("disk1")))
            let initiator = try await MiniInitiator.connect(port: daemon.iscsiPort)
            let login = try await initiator.login(target: daemon.targetName("disk1"))
            #expect(login == (0, 0), "login to the new target succeeds")
            let capacity = try await initiator.readCapacity()
            #expect(capacity.lastLBA == (16 << 20) / 4096 - 1 && capacity.blockSizeBytes == 4096)

            let deleted = try await daemon.request("DELETE", "/v1/volumes/disk1")
            #expect(deleted.status == 204 && deleted.body.isEmpty)
            #expect(await initiator.closedByTarget(), "the session on the deleted volume is closed")
            await initiator.close()
            #expect(daemon.replication.closing == ["disk1"], "replication let go of the volume before it closed")
            #expect(!daemon.daemon.servedTargets.contains(daemon.targetName("disk1")))
            #expect(try await daemon.request("GET", "/v1/volumes/disk1").status == 404)
            #expect(!FileManager.default.fileExists(atPath: daemon.dataDirectory + "/disk1.blk"))
            #expect(try await daemon.request("DELETE", "/v1/volumes/disk1").status == 404)

            let late = try await MiniInitiator.connect(port: daemon.iscsiPort)
            #expect(try await late.login(target: daemon.targetName("disk1")).statusClass == 2, "no login to a deleted volume")
            await late.close()

            let recreated = try await daemon.createVolume("disk1", sizeBytes: 8 << 20)
            #expect(try recreated.status == 201 && (recreated.decode(VolumeStatus.self)).sizeBytes == 8 << 20)
        }
    }

    @Test("a volume file that another writer holds: create and delete are 409; once free, delete removes it")
    func volumeInUse() async throws {
        try await AdminDaemon.run { daemon in
            var options = VolumeOptions()
            options.logger.logLevel = .critical
            // Another open of the file stands for another process: the lock is per open file.
            let path = daemon.dataDirectory + "/held.blk"
            let holder = try await Volume.create(at: path, configuration: VolumeConfiguration(sizeBytes: 8 << 20, walSizeBytes: 1 << 20),
                                                 options: options)
            let create = try await daemon.createVolume("held")
            #expect(create.status == 409 && create.errorMessage?.contains("in use") == true, "\(create.text)")
            let delete = try await daemon.request("DELETE", "/v1/volumes/held")
            #expect(delete.status == 409 && delete.errorMessage?.contains("in use") == true, "\(delete.text)")
            #expect(FileManager.default.fileExists(atPath: path))
            try await holder.close()
            // Not served (it appeared behind the daemon's back), but the name is the API's to delete.
            #expect(try await daemon.request("DELETE", "/v1/volumes/held").status == 204)
            #expect(!FileManager.default.fileExists(atPath: path))
        }
    }

    @Test("/metrics: engine counters after I/O and per-volume role, epoch and LSN gauges; a deleted volume's gauges go")
    func metrics() async throws {
        try await AdminDaemon.run(creates: [(name: "boot", sizeBytes: 8 << 20)]) { daemon in
            #expect(try await daemon.createVolume("m").status == 201)
            let initiator = try await MiniInitiator.connect(port: daemon.iscsiPort)
            #expect(try await initiator.login(target: daemon.targetName("m")) == (0, 0))
            _ = try await initiator.readCapacity()
            let read = try await initiator.readBlocks(lba: 0, blocks: 2, blockSizeBytes: 4096)
            #expect(read.status == 0 && read.data == [UInt8](repeating: 0, count: 8192))
            await initiator.close()
            #expect(try await daemon.request("PUT", "/v1/volumes/m/role", json: #"{"role":"primary","epoch":4,"replicas":["h:9"]}"#).status == 200)

            let reply = try await daemon.request("GET", "/metrics")
            #expect(!reply.text.contains(".blk\""), "every series is labelled with the volume's name")
            #expect(reply.status == 200 && reply.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
            let lines = Set(reply.text.split(separator: "\n").map(String.init))
            for line in [#"blockengine_reads_total{volume="m"} 1"#, #"blockengine_read_bytes_total{volume="m"} 8192"#,
                         #"blockd_volume_role{volume="m",role="primary"} 1.0"#, #"blockd_volume_role{volume="m",role="replica"} 0.0"#,
                         #"blockd_volume_epoch{volume="m"} 4.0"#, #"blockd_volume_head_lsn{volume="m"} 0.0"#,
                         #"blockd_volume_durable_lsn{volume="m"} 0.0"#, #"blockd_volume_checkpoint_lsn{volume="m"} 0.0"#,
                         #"blockd_volume_committed_lsn{volume="m"} 0.0"#, #"blockd_replica_lag_records{volume="m",replica="h:9"} 0.0"#,
                         #"blockd_replica_shipped_bytes{volume="m",replica="h:9"} 4096.0"#,
                         #"blockd_replica_lag_bytes{volume="m",replica="h:9"} 0.0"#,
                         #"blockd_replica_state{volume="m",replica="h:9",state="inSync"} 1.0"#,
                         #"blockd_replica_state{volume="m",replica="h:9",state="disconnected"} 0.0"#,
                         "# TYPE blockd_volume_epoch gauge", "# TYPE blockengine_reads_total counter"] {
                #expect(lines.contains(line), "missing: \(line)\n\(reply.text)")
            }

            #expect(try await daemon.request("DELETE", "/v1/volumes/m").status == 204)
            let after = try await daemon.request("GET", "/metrics").text
            #expect(!after.contains(#"blockd_volume_epoch{volume="m"}"#), "a deleted volume's gauges are gone")
        }
    }
}

@Suite("blockd serve: admin API settings")
struct AdminSettingsTests {
    @Test("the admin port taken by another listener stops the start with a clear error")
    func portTaken() async throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) == 0 && getsockname(listener, $0, &length) == 0 }
        }
        #expect(bound && listen(listener, 1) == 0)
        let port = Int(UInt16(bigEndian: address.sin_port))

        let directory = try ScratchDirectory()
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        var configuration = ServeConfiguration(dataDirectory: directory.path + "/data", port: 0,
                                               creates: [(name: "v", sizeBytes: 8 << 20)],
                                               newVolume: VolumeConfiguration(sizeBytes: 8 << 20, walSizeBytes: 1 << 20))
        configuration.admin = AdminConfiguration(host: "127.0.0.1", port: port)
        let daemon = BlockDaemon(configuration: configuration, logger: logger)
        await #expect {
            try await daemon.run()
        } throws: { error in
            "\(error)".contains("cannot serve the admin API on 127.0.0.1:\(port)")
        }
        // The volumes were closed again: the file opens cleanly.
        #expect(VolumeCommands.check(path: directory.path + "/data/v.blk").exitCode == 0)
    }

    @Test("the token file: missing, empty, open to group or others, or not one token is refused; mode 600 is read")
    func tokenFile() throws {
        let directory = try ScratchDirectory()
        #expect(try AdminConfiguration.readToken(path: directory.file("good", "abc-DEF_123\n")) == "abc-DEF_123")
        for (name, contents, mode, reason) in [
            ("empty", "\n", 0o600, "is empty"),
            ("group", "token", 0o640, "readable or writable by its group or other users"),
            ("others", "token", 0o604, "readable or writable by its group or other users"),
            ("spaces", "two words", 0o600, "visible ASCII"),
        ] {
            let path = try directory.file(name, contents, mode: mode)
            #expect {
                try AdminConfiguration.readToken(path: path)
            } throws: { error in
                "\(error)".contains(reason) && "\(error)".contains("--admin-token-file")
            }
        }
        #expect(throws: ServeError.self) { try AdminConfiguration.readToken(path: directory.path + "/missing") }
    }

    @Test("HOST:PORT for --portal, --admin and replicas")
    func addresses() throws {
        #expect(try NetworkAddress.parse("127.0.0.1:9260", what: "--admin") == ("127.0.0.1", 9260))
        #expect(try NetworkAddress.parse("[::1]:0", what: "--admin") == ("::1", 0))
        for bad in ["9260", "host:", ":80", "host:65536", "host:-1", "a b:1"] {
            #expect(throws: ServeError.self, "\(bad)") { try NetworkAddress.parse(bad, what: "--admin") }
        }
        #expect(AdminConfiguration(host: "127.0.0.2").isLoopback && AdminConfiguration(host: "::1").isLoopback)
        #expect(!AdminConfiguration(host: "0.0.0.0").isLoopback)
    }
}
