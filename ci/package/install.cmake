# Install rules and the Debian package (included from the top CMakeLists.txt).
#
#   cmake --install build/release --prefix /usr/local    # or: make install PREFIX=...
#       <prefix>/bin/spaces-server
#       <prefix>/share/spaces/{static,socket.io-client,migrations}/
#   make deb                                              # cpack -G DEB
#       the same under /usr, plus the systemd unit and /etc/default/spaces-server
#
# The program finds share/spaces from its own path (web/main.c), so the
# paths here and there must agree: bin/ and share/spaces/, not GNUInstallDirs.
install(TARGETS spaces-server RUNTIME DESTINATION bin COMPONENT server)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/web/static/ DESTINATION share/spaces/static
  COMPONENT server)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/migrations/ DESTINATION share/spaces/migrations
  COMPONENT server FILES_MATCHING PATTERN "*.sql")
install(FILES ${_bundle_out} DESTINATION share/spaces/socket.io-client COMPONENT server)
install(FILES ${CMAKE_SOURCE_DIR}/README.md ${CMAKE_SOURCE_DIR}/docs/operations.md
  ${CMAKE_SOURCE_DIR}/docs/limits.md DESTINATION share/doc/spaces-server COMPONENT server)

# The service: only in the package (absolute paths, outside any prefix), so
# a plain `cmake --install` never writes to /etc. `--component service`
# installs them by hand.
install(FILES ${CMAKE_CURRENT_LIST_DIR}/spaces-server.service
  DESTINATION /lib/systemd/system COMPONENT service EXCLUDE_FROM_ALL)
# Root only: it may come to hold the database password.
install(FILES ${CMAKE_CURRENT_LIST_DIR}/spaces-server.env DESTINATION /etc/default
  RENAME spaces-server PERMISSIONS OWNER_READ OWNER_WRITE COMPONENT service EXCLUDE_FROM_ALL)

# `make install` and cpack install what is built; they do not build `all`
# (the Release tree of `make run` builds spaces-server alone).
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME spaces-server)
set(CPACK_PACKAGE_VENDOR "Spaces")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "Spaces maintainers <spaces@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Spaces website and its Socket.IO server")
set(CPACK_SET_DESTDIR ON) # the service's absolute paths go into the package too
set(CPACK_INSTALL_PREFIX /usr) # the prefix with CPACK_SET_DESTDIR
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
# One package with both components.
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL server service)
set(CPACK_COMPONENTS_GROUPING ALL_COMPONENTS_IN_ONE)
set(CPACK_DEBIAN_PACKAGE_NAME spaces-server)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION web)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON) # libuv1, libpq5, ... from the binary (dpkg-shlibdeps)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "postgresql")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "Each space is a page whose work is done by a remote app that dials out
to the site over Socket.IO. Runs as spaces-server.service; configure it
in /etc/default/spaces-server.")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${CMAKE_CURRENT_LIST_DIR}/conffiles ${CMAKE_CURRENT_LIST_DIR}/postinst
  ${CMAKE_CURRENT_LIST_DIR}/prerm ${CMAKE_CURRENT_LIST_DIR}/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
