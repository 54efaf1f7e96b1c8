# The Debian package (CPack): `cpack -G DEB` in the build directory, or scripts/deb.sh.
#   /usr/bin/shoal, /etc/shoal/node.conf (a conffile: the embedded example with
#   data_dir = /var/lib/shoal), /lib/systemd/system/shoal.service, the config examples and
#   README.Debian under /usr/share/doc/shoal, a manual page; postinst makes the `shoal` system user and
#   /var/lib/shoal. Depends are computed by dpkg-shlibdeps from the binary.
include(GNUInstallDirs)

install(TARGETS shoal RUNTIME DESTINATION bin)

# /etc/shoal/node.conf: embedded.conf with the data dir of a system service.
file(READ ${PROJECT_SOURCE_DIR}/cluster-config/embedded.conf shoal_conf)
string(REPLACE "data_dir = ../shoal-data" "data_dir = /var/lib/shoal" shoal_conf "${shoal_conf}")
string(REPLACE "#   shoal node --config cluster-config/embedded.conf"
               "#   systemctl start shoal      (or: shoal node --config /etc/shoal/node.conf)"
               shoal_conf "${shoal_conf}")
file(WRITE ${PROJECT_BINARY_DIR}/packaging/node.conf "${shoal_conf}")
install(FILES ${PROJECT_BINARY_DIR}/packaging/node.conf DESTINATION /etc/shoal)

set(SHOAL_BIN /usr/bin/shoal)
set(SHOAL_CONF /etc/shoal/node.conf)
set(SHOAL_DOC "file:///usr/share/doc/shoal/README.Debian")
configure_file(${PROJECT_SOURCE_DIR}/packaging/shoal.service.in
               ${PROJECT_BINARY_DIR}/packaging/shoal.service @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/packaging/shoal.service DESTINATION /lib/systemd/system)

install(FILES ${PROJECT_SOURCE_DIR}/packaging/deb/copyright DESTINATION share/doc/shoal)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/cluster-config/ DESTINATION share/doc/shoal/examples
        PATTERN "secret.txt" EXCLUDE)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/deb/README.Debian DESTINATION share/doc/shoal)
# A native package's changelog (Debian policy 12.7), gzipped with -n (no timestamp: the same
# bytes every build).
file(WRITE ${PROJECT_BINARY_DIR}/packaging/changelog
     "shoal (${PROJECT_VERSION}) stable; urgency=medium\n\n"
     "  * Shoal ${PROJECT_VERSION}: see README.md in the source tree.\n\n"
     " -- Shoal developers <shoal@example.org>  Mon, 23 Nov 2026 00:00:00 +0000\n")
add_custom_command(OUTPUT ${PROJECT_BINARY_DIR}/packaging/changelog.gz
                   COMMAND gzip -9nkf ${PROJECT_BINARY_DIR}/packaging/changelog
                   DEPENDS ${PROJECT_BINARY_DIR}/packaging/changelog)
add_custom_target(shoal_changelog ALL DEPENDS ${PROJECT_BINARY_DIR}/packaging/changelog.gz)
install(FILES ${PROJECT_BINARY_DIR}/packaging/changelog.gz DESTINATION share/doc/shoal)
add_custom_command(OUTPUT ${PROJECT_BINARY_DIR}/packaging/shoal.1.gz
                   COMMAND gzip -9nc ${PROJECT_SOURCE_DIR}/packaging/deb/shoal.1
                           > ${PROJECT_BINARY_DIR}/packaging/shoal.1.gz
                   DEPENDS ${PROJECT_SOURCE_DIR}/packaging/deb/shoal.1)
add_custom_target(shoal_manpage ALL DEPENDS ${PROJECT_BINARY_DIR}/packaging/shoal.1.gz)
install(FILES ${PROJECT_BINARY_DIR}/packaging/shoal.1.gz DESTINATION share/man/man1)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME shoal)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "Shoal developers <shoal@example.org>")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "passwd")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "cluster that serves many small versioned ML models")
string(CONCAT CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "Shoal nodes serve thousands of small, versioned fastText models (such as\n"
    "per-tenant chatbot intent classifiers) over HTTP (KServe V2) and ZeroMQ,\n"
    "gossip membership with their peers, route each request to a node that holds\n"
    "a replica, and move labels (a rollback) on every node at once.\n"
    "This package runs one node as the systemd service shoal.")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/deb/postinst
    ${PROJECT_SOURCE_DIR}/packaging/deb/postrm
    ${PROJECT_SOURCE_DIR}/packaging/deb/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
