# shardledger — the two commands a new machine needs are `make run` and `make test`.
BUILD_DIR ?= build
SAN_BUILD_DIR ?= build-asan
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
DATA_DIR ?= ./var/shardledger

.PHONY: run deps configure build test test-sanitize bench format check-layers clean

# Installs what is missing, builds, and runs the daemon in the foreground on $(DATA_DIR)
# (RPC tcp://127.0.0.1:7400, PUB tcp://127.0.0.1:7401; Ctrl-C stops it cleanly).
run: build
	$(BUILD_DIR)/tools/shardledgerd --data-dir $(DATA_DIR)

deps:
	bash scripts/install-deps.sh

configure: deps
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

# The same suites under AddressSanitizer and UndefinedBehaviorSanitizer (a Debug build).
test-sanitize: deps
	cmake -S . -B $(SAN_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSHARDLEDGER_SANITIZE=ON
	cmake --build $(SAN_BUILD_DIR) -j $(JOBS)
	cd $(SAN_BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

bench: build
	$(BUILD_DIR)/tools/shardledger-bench append
	$(BUILD_DIR)/tools/shardledger-bench read
	$(BUILD_DIR)/tools/shardledger-bench routing
	$(BUILD_DIR)/tools/shardledger-bench jobs
	$(BUILD_DIR)/tools/shardledger-bench pubsub
	$(BUILD_DIR)/tools/shardledger-bench rpc

check-layers:
	python3 ../shared/tools/check-layers .

format:
	clang-format -i $$(git ls-files '*.h' '*.cc')

clean:
	rm -rf $(BUILD_DIR) $(SAN_BUILD_DIR)
