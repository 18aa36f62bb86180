# Development environment of Tapio: `nix develop` gives Python 3.11 with the project's libraries and
# the tools of the build, the tests and the deployment (Bazel, nats-server, Terraform, kubectl,
# kustomize, Helm, kind, bcc on Linux). `nix fmt` formats Nix files.
# The venv of tools/setup/bootstrap.sh stays the reference for exact Python versions
# (requirements.lock); this shell provides the same packages from nixpkgs.
{
  description = "Tapio: open event pipeline for Kubernetes (collectors -> NATS JetStream -> correlation -> SIEM)";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.11";
  };

  outputs =
    { self, nixpkgs }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
        "x86_64-darwin"
        "aarch64-darwin"
      ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f system);
      pkgsFor =
        system:
        import nixpkgs {
          inherit system;
          # Terraform is BSL-licensed (unfree in nixpkgs); nothing else needs unfree packages.
          config.allowUnfreePredicate = pkg: builtins.elem (nixpkgs.lib.getName pkg) [ "terraform" ];
        };
    in
    {
      devShells = forAllSystems (
        system:
        let
          pkgs = pkgsFor system;
          python = pkgs.python311.withPackages (
            ps: with ps; [
              # runtime
              nats-py
              anyio
              attrs
              cattrs
              protobuf
              kubernetes
              prometheus-client
              pyyaml
              zstandard
              lz4
              # build: protobuf code generation
              grpcio-tools
              # tests and checks
              pytest
              pytest-timeout
              hypothesis
              testcontainers
              mypy
              types-pyyaml
              types-protobuf
              python-hcl2
            ]
          );
        in
        {
          default = pkgs.mkShell {
            packages =
              [
                python
                pkgs.ruff
                # WORKSPACE builds with Bazel 4's native rules and stays readable by newer Bazel.
                pkgs.bazel_7
                pkgs.nats-server
                pkgs.terraform
                pkgs.kubectl
                pkgs.kustomize
                pkgs.kubernetes-helm
                pkgs.kind
                pkgs.openssl
                pkgs.git
                pkgs.gnumake
              ]
              # eBPF: bcc and its Python bindings exist for Linux only.
              ++ pkgs.lib.optionals pkgs.stdenv.isLinux [
                pkgs.bcc
              ];
            shellHook = ''
              # The generated protobuf modules and the components' sources, as tools/setup/bootstrap.sh
              # puts them on the venv's path.
              export PYTHONPATH="$PWD/build/gen''${PYTHONPATH:+:$PYTHONPATH}"
              for src in "$PWD"/components/*/src "$PWD"/components/collectors/*/src; do
                [ -d "$src" ] && PYTHONPATH="$PYTHONPATH:$src"
              done
              ${pkgs.lib.optionalString pkgs.stdenv.isLinux ''export PYTHONPATH="$PYTHONPATH:${pkgs.bcc}/${pkgs.python3.sitePackages}"''}
              export PYTHONPATH
            '';
          };
        }
      );

      formatter = forAllSystems (system: (pkgsFor system).nixfmt-rfc-style);
    };
}
